"""A/B of builds of slimops._C in one process (each loaded as its own package, abpkgN._C): mx_convert 8192 x 8192,
block 32, into reused buffers, with and without the conversion report, the call order reversed every other round.
Run: python report_ab.py A.so,B.so "mxint4>mxint2,mxint8>mxint4" 30"""
import importlib
import os
import shutil
import sys
import time

import torch

torch.set_num_threads(2)
sos, pairs, rounds = sys.argv[1].split(","), sys.argv[2].split(","), int(sys.argv[3])
libs = []
for i, so in enumerate(sos):
    d = f"/tmp/q/pkg_{os.getpid()}_{i}/abpkg{i}"; os.makedirs(d, exist_ok=True); open(d + "/__init__.py", "w").close()
    shutil.copy(so, d + "/_C.cpython-311-x86_64-linux-gnu.so"); sys.path.insert(0, os.path.dirname(d))
    libs.append(importlib.import_module(f"abpkg{i}._C"))
import slimops
from slimops.mx.formats import FORMATS
n = 8192
x = torch.randn(n, n, generator=torch.Generator().manual_seed(0))
cases = {}
for p in pairs:
    s, t = p.split(">"); a = slimops.mx.quantize(x, s); fs, ft = FORMATS[s], FORMATS[t]
    cases[p] = (a.data, a.scales, fs, ft, torch.empty(n, ft.packed_bytes(n), dtype=torch.uint8), torch.empty(n, n // 32, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64))
best = {}
counts = {}
for r in range(rounds):
    for p, (dd, sc, fs, ft, od, osc, cnt) in cases.items():
        order = [(i, rep) for i in range(len(libs)) for rep in (0, 1)]
        if r % 2: order.reverse()
        for i, rep in order:
            t0 = time.perf_counter()
            libs[i].mx_convert(dd.data_ptr(), sc.data_ptr(), n, n, od.data_ptr(), osc.data_ptr(), fs.format_id, ft.format_id, 32, False, 2, cnt.data_ptr() if rep else 0)
            k = (p, i, rep); best[k] = min(best.get(k, 1e9), time.perf_counter() - t0)
            if rep: counts[(p, i)] = cnt.tolist()
for p in pairs:
    line = f"{p:24s}"
    for i, so in enumerate(sos):
        t0, t1 = best[(p, i, 0)], best[(p, i, 1)]
        line += f"  {os.path.basename(so)}: {t0*1e3:.3f} / report {t1*1e3:.3f} ms ({(t1/t0-1)*100:+.1f} %)"
    print(line, "same counts" if all(counts[(p, i)] == counts[(p, 0)] for i in range(len(sos))) else "COUNTS DIFFER")
for i in range(len(sos)): shutil.rmtree(f"/tmp/q/pkg_{os.getpid()}_{i}")
