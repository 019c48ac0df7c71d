"""Command line: ``slimops info | bench | profile OP`` (also ``python -m slimops ...``).

* ``slimops info [--json]``: versions, built native modules, active backends.
* ``slimops bench [--quick] [--device cpu|cuda|all] [--out results/] [--ops ...]``:
  the MX microbenchmarks; prints a table and writes ``<out>/bench_mx.{json,csv,png}``.
* ``slimops profile OP [--fmt mxfp8] [--device ...] [--out ...]``: one op
  (mx_quantize, mx_dequantize, mx_fake_quantize) per provider under torch.profiler,
  chrome traces and key-averages tables; NVML clocks/power/memory on a GPU.
* ``slimops convert IN.safetensors --to FMT -o OUT.safetensors``: an anchor checkpoint to a
  lower MX format (Slice-and-Scale), or float weights to an anchor (slimops.slicescale.cli).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slimops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="versions, built native modules and active backends")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_bench = sub.add_parser("bench", help="MX microbenchmarks: slimops vs reference vs torchao")
    p_prof = sub.add_parser("profile", help="one op per provider under torch.profiler (+ NVML on GPU)")
    p_conv = sub.add_parser("convert", help="anchor checkpoint -> lower MX format; float checkpoint -> anchor")
    # The benchmark modules import nothing heavy at module level; their arguments live with them.
    from slimops.benchmarks import mx as bench_mx
    from slimops.benchmarks import profile as bench_profile

    bench_mx.add_arguments(p_bench)
    bench_profile.add_arguments(p_prof)
    from slimops.slicescale import cli as convert_cli

    convert_cli.add_arguments(p_conv)
    args = parser.parse_args(argv)

    if args.command == "info":
        import slimops
        from slimops._info import format_info

        d = slimops.info()
        print(json.dumps(d, indent=2) if args.json else format_info(d))
        return 0
    if args.command == "bench":
        return bench_mx.main(args)
    if args.command == "profile":
        return bench_profile.main(args)
    if args.command == "convert":
        return convert_cli.main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
