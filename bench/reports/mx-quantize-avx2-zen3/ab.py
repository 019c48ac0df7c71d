"""MX quantize into reused buffers (the kernel alone), 8192 x 8192, floor scales, 2 threads: this build of
slimops._C against other builds loaded beside it, and the roofline dst.copy_(src) of 256 MiB, interleaved round by
round in an order shuffled each round (minimum over the rounds). "of copy" counts the input read and the codes and
scales written.
Usage: python ab.py DTYPE ROUNDS BLOCK [OTHER_C.so ...]"""
import random
import sys
import time

import torch

from slimops.benchmarks.harness import native_builds
from slimops.mx.formats import FORMATS, get_format

torch.set_num_threads(2)
mods = native_builds(sys.argv[4:])  # this build, then the others
dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[sys.argv[1]]
rounds = int(sys.argv[2])
R = L = 8192
BS = int(sys.argv[3])
DT = {torch.float32: 0, torch.bfloat16: 1}[dtype]
x = torch.randn(R, L).to(dtype)
src = torch.ones(64 << 20)
dst = torch.empty_like(src)
bufs = {}
for name in FORMATS:
    f = get_format(name)
    bufs[name] = (torch.empty(R, f.packed_bytes(L), dtype=torch.uint8), torch.empty(R, L // BS, dtype=torch.uint8))
for d, s in bufs.values():  # first touch outside the timing
    d.fill_(0), s.fill_(0)
best = {}


def timed(key, fn):
    t = time.perf_counter()
    fn()
    best[key] = min(best.get(key, 1e9), time.perf_counter() - t)


cases = [("copy", None, None)] + [(name, mname, C) for name in FORMATS for mname, C in mods]
order = random.Random(0)
for rnd in range(rounds):  # a new order each round: no case always runs right after the copy
    order.shuffle(cases)
    for name, mname, C in cases:
        if C is None:
            timed("copy", lambda: dst.copy_(src))
            continue
        f = get_format(name)
        d, s = bufs[name]
        timed((name, mname), lambda: C.mx_quantize(x.data_ptr(), DT, R, L, d.data_ptr(), s.data_ptr(), f.format_id,
                                                    BS, 0, False, 0, 2))
copy_bw = 2 * src.numel() * 4 / best["copy"] / 1e9
print(f"{sys.argv[1]}, {R}x{L}, block {BS}, 2 threads, {rounds} rounds; copy {copy_bw:.1f} GB/s")
for name in FORMATS:
    f = get_format(name)
    nbytes = x.numel() * x.element_size() + bufs[name][0].numel() + bufs[name][1].numel()
    line = f"{name:>12}"
    for mname, _ in mods:
        t = best[(name, mname)]
        line += f" | {mname}: {t * 1e3:7.2f} ms {nbytes / t / 1e9 / copy_bw:5.2f} of copy"
    if len(mods) > 1:
        line += f" | speedup {best[(name, mods[1][0])] / best[(name, 'this')]:.2f}x"
    print(line, flush=True)
