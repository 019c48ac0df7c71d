"""MX quantize in CPU time of one thread on cache-resident data (32 x 4096, block 32, floor scales): this build of
slimops._C against other builds loaded beside it, interleaved round by round (minimum of 20 x 20 calls).
Usage: python compute_ab.py DTYPE [OTHER_C.so ...]"""
import sys
import time

import torch

from slimops.benchmarks.harness import native_builds
from slimops.mx.formats import FORMATS, get_format

torch.set_num_threads(1)
mods = native_builds(sys.argv[2:])  # this build, then the others
dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[sys.argv[1]]
DT = {torch.float32: 0, torch.bfloat16: 1}[dtype]
R, L, BS = 32, 4096, 32
x = torch.randn(R, L).to(dtype)
best = {}
for rnd in range(20):
    for name in FORMATS:
        f = get_format(name)
        d = torch.empty(R, f.packed_bytes(L), dtype=torch.uint8)
        s = torch.empty(R, L // BS, dtype=torch.uint8)
        for mname, C in mods:
            t = time.thread_time_ns()
            for _ in range(20):
                C.mx_quantize(x.data_ptr(), DT, R, L, d.data_ptr(), s.data_ptr(), f.format_id, BS, 0, False, 0, 1)
            best[(name, mname)] = min(best.get((name, mname), 1e18), (time.thread_time_ns() - t) / 20)
print(f"{sys.argv[1]}, {R}x{L}, block {BS}, 1 thread, CPU time per element (minimum of 20 rounds)")
for name in FORMATS:
    print(f"{name:>12} | " + " | ".join(f"{mname}: {best[(name, mname)] / (R * L):.3f} ns" for mname, _ in mods)
          + (f" | speedup {best[(name, mods[1][0])] / best[(name, 'this')]:.2f}x" if len(mods) > 1 else ""))
