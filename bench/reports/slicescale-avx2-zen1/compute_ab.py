"""mx_convert in CPU time of one thread on cache-resident data (256 x 4096), with and without the report: this
build against other builds of slimops._C loaded beside it, interleaved round by round (minimum of 30 x 10 calls).
Usage: python compute_ab.py BLOCK [OTHER_C.so ...]"""
import sys
import time

import torch

import slimops
from slimops.benchmarks.harness import native_builds
from slimops.mx.formats import get_format

torch.set_num_threads(1)
mods = native_builds(sys.argv[2:])  # this build, then the others
PAIRS = [("mxint4", "mxint2"), ("mxint8", "mxint6"), ("mxint6", "mxint2"), ("mxfp6_e3m2", "mxfp4_e2m1"),
         ("mxint8", "mxint4"), ("mxint8", "mxint2"), ("mxint6", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1"),
         ("mxfp8_e4m3", "mxfp6_e2m3"), ("mxfp6_e2m3", "mxfp4_e2m1")]
R, L = 256, 4096
bs = int(sys.argv[1]) if len(sys.argv) > 1 else 32
x = torch.randn(R, L)
counts = torch.zeros(8, dtype=torch.int64)
for s, d in PAIRS:
    a = slimops.mx.quantize(x, s, bs)
    fs, fd = get_format(s), get_format(d)
    od = torch.empty(R, fd.packed_bytes(L), dtype=torch.uint8)
    os_ = torch.empty_like(a.scales)
    best = {}
    for rnd in range(30):
        for name, C in mods:
            for rep in (False, True):
                t = time.thread_time_ns()
                for _ in range(10):
                    C.mx_convert(a.data.data_ptr(), a.scales.data_ptr(), R, L, od.data_ptr(), os_.data_ptr(),
                                 fs.format_id, fd.format_id, bs, False, 1, counts.data_ptr() if rep else 0)
                dt = (time.thread_time_ns() - t) / 10
                best[(name, rep)] = min(best.get((name, rep), 1e18), dt)
    line = f"{s:>11}->{d:<11}"
    for name, _ in mods:
        t, tr = best[(name, False)] * 1e-3, best[(name, True)] * 1e-3
        line += f" | {name}: {t:6.1f} us, report {tr:6.1f} (+{(tr / t - 1) * 100:3.0f}%)"
    print(line, flush=True)
