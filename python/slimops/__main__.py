"""Command line: ``slimops info | check | bench [FAMILY ...] | profile FAMILY | convert`` (also
``python -m slimops ...``).

* ``slimops info [--json]``: versions, built native modules, and per family,
  op and device the backends declared, built and picked by ``auto``.
* ``slimops check [--device cpu|cuda|all] [--family F ...] [--backend B ...]``:
  every family's kernels against the reference on a quick grid, one table row
  per family, op, dtype, backend and device; exit status 1 on any mismatch
  (``slimops.check``).
* ``slimops bench [FAMILY ...] [--quick] [--device cpu|cuda|all] [--out results/]
  [--providers ...] [suite options]``: the benchmark suites (every family when
  none is named) through the common runner; prints a table per suite and writes
  ``<out>/bench_<family>.{json,csv,png}``.
* ``slimops profile FAMILY|FAMILY_OP [suite options] [--device ...] [--out ...]``:
  the first case the options select, per provider, under torch.profiler (chrome
  traces, key-averages tables; NVML clocks/power/memory on a GPU).
* ``slimops convert IN.safetensors --to FMT -o OUT.safetensors``: an anchor checkpoint to a
  lower MX format (Slice-and-Scale), or float weights to an anchor (``slimops.slicescale.cli``).
* ``slimops partition --world W --out DIR [graph options]``: a graph partitioned once into one shard per
  rank for ``slimops.distributed.train --shards DIR`` (``slimops.distributed.shards``).

Every argument is checked before any work starts; a bad one ends the command
with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class _SharedOptions:
    """Lets several suites declare the same option (``--dtypes``, say): the first declaration is kept."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._parser = parser
        self._groups: dict = {}

    def add_argument_group(self, title: str, *a, **kw):
        if title not in self._groups:
            self._groups[title] = _SharedOptions(self._parser.add_argument_group(title, *a, **kw))
        return self._groups[title]

    def add_argument(self, *flags, **kw):
        seen = {s for a in self._parser._actions for s in a.option_strings}
        if any(f in seen for f in flags):
            return None
        return self._parser.add_argument(*flags, **kw)


def _common_options(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes and few rounds (tests, smoke runs)")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to run (all: CPU, and CUDA when present; default)")
    p.add_argument("--out", default=out_default, help=f"folder for the reports (default: {out_default})")
    p.add_argument("--providers", nargs="+", help="only these providers (default: every provider of the suite)")
    p.add_argument("--compile-budget", type=float, default=180.0,
                   help="seconds torch.compile may take over the run before compiled providers are skipped")


def _fail(msg: str) -> int:
    print(f"slimops: {msg}", file=sys.stderr)
    return 2


def _check_out(path: str) -> "str | None":
    """None when ``path`` is (or can become) a writable folder, else why not."""
    p = Path(path)
    for parent in [p, *p.parents]:
        if parent.exists():
            if not parent.is_dir():
                return f"--out {path}: {parent} exists and is not a folder"
            if not os.access(parent, os.W_OK):
                return f"--out {path}: {parent} is not writable"
            return None
    return None


def _devices(arg: str) -> "list | str":
    import torch

    if arg == "cpu":
        return ["cpu"]
    if arg == "cuda":
        return ["cuda"] if torch.cuda.is_available() else "--device cuda, but torch sees no CUDA device"
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _split(values):
    return [v for item in values for v in item.split(",") if v] if values else None


def build_parser() -> argparse.ArgumentParser:
    from slimops.benchmarks import SUITES, load_suite
    from slimops.benchmarks import profile as bench_profile

    parser = argparse.ArgumentParser(prog="slimops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="versions, built native modules and the backends per family")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_check = sub.add_parser("check", help="every kernel against the reference on a quick grid (exit 1 on a mismatch)")
    from slimops import check as check_mod

    check_mod.add_arguments(p_check)
    p_bench = sub.add_parser("bench", help="benchmark suites: slimops vs the reference vs peer libraries")
    p_bench.add_argument("families", nargs="*", metavar="FAMILY",
                         help=f"suites to run, from {', '.join(SUITES)} (default: all)")
    _common_options(p_bench, "results")
    p_prof = sub.add_parser("profile", help="one case of a suite per provider under torch.profiler (+ NVML on GPU)")
    p_prof.add_argument("target", metavar="FAMILY", help=f"a family ({', '.join(SUITES)}) or one of its ops "
                                                         "(mx_quantize, ...)")
    _common_options(p_prof, "results/profile")
    bench_profile.add_arguments(p_prof)
    p_conv = sub.add_parser("convert", help="anchor checkpoint -> lower MX format; float checkpoint -> anchor")
    from slimops.slicescale import cli as convert_cli

    convert_cli.add_arguments(p_conv)
    p_part = sub.add_parser("partition", help="partition a graph once into one shard per rank (distributed training)")
    from slimops.distributed import partition_cli

    partition_cli.add_arguments(p_part)
    for family in SUITES:  # each suite's own options, on both commands
        suite = load_suite(family)
        suite.add_arguments(_SharedOptions(p_bench))
        suite.add_arguments(_SharedOptions(p_prof))
    return parser


def _bench(args) -> int:
    from slimops._ranks import RankError
    from slimops.benchmarks import SUITES, load_suite, runner

    families = args.families or list(SUITES)
    unknown = [f for f in families if f not in SUITES]
    if unknown:
        return _fail(f"bench: unknown families {unknown}; expected from {list(SUITES)}")
    suites = [load_suite(f) for f in families]
    args.providers = _split(args.providers)
    known = {p for s in suites for p in s.providers}
    if args.providers and set(args.providers) - known:
        return _fail(f"bench: --providers: unknown {sorted(set(args.providers) - known)}; expected from "
                     f"{sorted(known)}")
    for s in suites:
        s.check_arguments(args)
    devices = _devices(args.device)
    if isinstance(devices, str):
        return _fail(devices)
    ok = False
    for s in suites:
        try:
            meta, rows = runner.run_suite(s, args, devices)
        except RankError as e:  # a rank of a multi-process suite failed: the run fails, clearly
            print(f"slimops: bench {s.name}: {e}", file=sys.stderr)
            return 1
        paths = runner.write_reports(s, Path(args.out), meta, rows)
        runner.print_summary(s, meta, rows, paths)
        ok = ok or any(r["status"] == "ok" for r in rows)
    return 0 if ok else 1


def _profile(args) -> int:
    from slimops.benchmarks import SUITES, load_suite
    from slimops.benchmarks import profile as bench_profile

    family = args.target if args.target in SUITES else next(
        (f for f in SUITES if args.target.startswith(f + "_")), None)
    if family is None:
        return _fail(f"profile: unknown family or op {args.target!r}; expected a family from {list(SUITES)} "
                     "or one of its ops (mx_quantize, ...)")
    suite = load_suite(family)
    if suite.multiprocess:
        return _fail(f"profile: the {family} suite runs in several processes, which profile does not support")
    if family != args.target:
        suite.select_op(args, args.target)
    args.providers = _split(args.providers)
    if args.providers and set(args.providers) - set(suite.providers):
        return _fail(f"profile: --providers: unknown {sorted(set(args.providers) - set(suite.providers))}; "
                     f"expected from {list(suite.providers)}")
    suite.check_arguments(args)
    bench_profile.check_arguments(args)
    devices = _devices(args.device)
    if isinstance(devices, str):
        return _fail(devices)
    return bench_profile.main(suite, args, devices)


def main(argv: "list[str] | None" = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "info":
        import slimops
        from slimops._info import format_info

        d = slimops.info()
        print(json.dumps(d, indent=2) if args.json else format_info(d))
        return 0
    if args.command == "check":
        from slimops import check as check_mod

        devices = _devices(args.device)
        return _fail(f"check: {devices}") if isinstance(devices, str) else check_mod.main(args, devices)
    if args.command == "convert":
        from slimops.slicescale import cli as convert_cli

        return convert_cli.main(args)
    if args.command == "partition":
        from slimops.distributed import partition_cli

        return partition_cli.main(args)
    why = _check_out(args.out)
    if why:
        return _fail(f"{args.command}: {why}")
    try:
        return _bench(args) if args.command == "bench" else _profile(args)
    except SystemExit as e:  # a suite's check_arguments refusing an option: one line, status 2
        if isinstance(e.code, str):
            return _fail(e.code.removeprefix("slimops: "))
        raise


if __name__ == "__main__":
    sys.exit(main())
