"""Re-plot a report of ``slimops bench`` (its JSON), e.g. to compare another metric.

    python bench/plot.py results/bench_mx.json                      # -> results/bench_mx.png
    python bench/plot.py results/bench_mx.json --metric time_ms --out /tmp/times.png
    python bench/plot.py results/bench_mx.json --metric frac_of_copy_bw
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slimops.benchmarks import harness

LABELS = {"gb_s": "GB/s (read + write)", "time_ms": "minimum time per call over the interleaved rounds, ms", "median_ms": "median time per call, ms",
          "frac_of_copy_bw": "fraction of the measured copy bandwidth", "peak_mem_mb": "peak memory, MB"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path, help="a bench_mx.json written by `slimops bench`")
    p.add_argument("--metric", default="gb_s", choices=sorted(LABELS))
    p.add_argument("--out", type=Path, help="PNG path (default: next to the report)")
    args = p.parse_args(argv)
    data = json.loads(args.report.read_text())
    meta, rows = data["meta"], data["rows"]
    hlines = None
    if args.metric == "gb_s":
        hlines = {d: (bw, f"copy {bw:.0f} GB/s") for d, bw in meta.get("copy_bw_gb_s", {}).items()}
    elif args.metric == "frac_of_copy_bw":
        hlines = {d: (1.0, "copy") for d in meta.get("copy_bw_gb_s", {})}
    out = args.out or args.report.with_suffix(".png" if args.metric == "gb_s" else f".{args.metric}.png")
    harness.plot_bars(out, rows, group_key=lambda r: f"{r['op']}\n{r['fmt']}\n{r['dtype']}", series_key="provider",
                      value_key=args.metric, ylabel=LABELS[args.metric],
                      title=f"slimops MX microbenchmarks ({meta['env']['date'][:10]})", hlines=hlines)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
