"""The minimum of each binary's three runs in run.txt, one line per case and binary (README.md's tables)."""
import re
import sys
from pathlib import Path

best = {}
for line in Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("run.txt")).read_text().splitlines():
    name, rest = line.split(": ", 1)
    case = rest.split(": ")[0]
    vals = [float(v) for v in re.findall(r"([\d.]+) us", rest)]
    old = best.get((case, name))
    best[(case, name)] = vals if old is None else [min(a, b) for a, b in zip(old, vals)]
for (case, name), vals in best.items():
    extra = f"   report {vals[1] / vals[0] * 100 - 100:+.0f} %" if len(vals) > 1 else ""
    print(f"{case:40s} {name:22s} " + " / ".join(f"{v:8.1f}" for v in vals) + " us" + extra)
