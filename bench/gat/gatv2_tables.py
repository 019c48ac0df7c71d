"""Markdown tables of a ``slimops bench gatv2`` report (bench_gatv2.json): per graph and part, FusedGATv2Conv
against PyG GATv2Conv (time, speed-up, bytes saved for backward and their ratio) from one interleaved run.

    python bench/gat/gatv2_tables.py bench/reports/gatv2-cpu-2core/bench_gatv2.json
"""

from __future__ import annotations

import json
import sys


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else "—"


def tables(path: str) -> str:
    with open(path) as f:
        data = json.load(f)
    rows = data["rows"]
    by = {}
    for r in rows:
        key = (r["mode"], r["part"], r["graph"], r["nodes"], r["avg_degree"])
        by.setdefault(key, {})[r["provider"]] = r
    out = []
    for mode in sorted({k[0] for k in by}):
        out += [f"\n{mode} (forward{' + backward' if mode == 'full' else ''}), minimum over the rounds:\n",
                "| part | graph | N | degree | slimops ms | PyG ms | x PyG | reference ms | saved MiB slimops | "
                "saved MiB PyG | PyG saved / slimops |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for key in sorted(k for k in by if k[0] == mode):
            p = by[key]
            ours, pyg, ref = p.get("slimops", {}), p.get("pyg", {}), p.get("reference", {})
            pyg_ms = fmt(pyg.get("time_ms"), ".1f") if pyg.get("status") == "ok" else f"skipped: {pyg.get('note')}"
            out.append(f"| {key[1]} | {key[2]} | {key[3]} | {key[4]} | {fmt(ours.get('time_ms'), '.1f')} | {pyg_ms} | "
                       f"{fmt(ours.get('speedup_vs_pyg'), '.2f')} | {fmt(ref.get('time_ms'), '.1f')} | "
                       f"{fmt(ours.get('saved_mib'), '.1f')} | {fmt(pyg.get('saved_mib'), '.1f')} | "
                       f"{fmt(ours.get('saved_vs_pyg'), '.1f')} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(tables(sys.argv[1] if len(sys.argv) > 1 else "bench/reports/gatv2-cpu-2core/bench_gatv2.json"))
