"""``slimops convert IN.safetensors --to FMT -o OUT.safetensors``.

An anchor checkpoint (slimops MX metadata) is converted to FMT by Slice-and-Scale (packed ->
packed); a float checkpoint (a Hugging Face model's, say) is quantized into an anchor in FMT
(tensors that are floating, at least 2-d with a last dimension of at least 16; ``--keep REGEX``
leaves matching names in float). The output is written atomically (temporary file, then rename).
A Slice-and-Scale conversion prints its conversion report, one line per weight and a total
(``slimops.slicescale.report``), unless ``--no-report``.
"""

from __future__ import annotations

import argparse
import re
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="input .safetensors (an anchor checkpoint, or float weights)")
    p.add_argument("--to", required=True, dest="fmt", help="target MX format (e.g. mxint4, mxfp4, mxint8)")
    p.add_argument("-o", "--output", required=True, help="output .safetensors (written atomically)")
    p.add_argument("--block-size", type=int, default=32, help="block size when quantizing float weights")
    p.add_argument("--rounding", default="nearest", choices=("nearest", "truncate"),
                   help="element rounding of Slice-and-Scale")
    p.add_argument("--keep", default=None, help="regex of tensor names to keep in float when quantizing")
    p.add_argument("--no-report", action="store_true",
                   help="do not print the conversion report (per weight: lossless, saturated, flushed, clamped "
                        "and NaN blocks)")


def main(args) -> int:
    from ..mx.formats import get_format
    from .checkpoint import CheckpointError, convert_file, default_select

    try:
        get_format(args.fmt)
        select = default_select
        if args.keep:
            pattern = re.compile(args.keep)
            select = lambda name, t: default_select(name, t) and not pattern.search(name)  # noqa: E731
        summary = convert_file(args.input, args.output, args.fmt, block_size=args.block_size,
                               rounding=args.rounding, select=select)
    except (CheckpointError, ValueError, TypeError, FileNotFoundError, re.error) as e:
        print(f"slimops convert: error: {e}", file=sys.stderr)
        return 2
    print(f"slimops convert: {args.input} -> {args.output}: {summary['mode']} to {summary['format']}, "
          f"{summary['mx_weights']} MX weights, {summary['other_tensors']} other tensors, {summary['bytes']} bytes")
    if summary["reports"] and not args.no_report:
        from .report import format_table

        print("conversion report (blocks; lossless: every value kept):")
        print(format_table(summary["reports"]))
    return 0
