"""mx_convert at 8192 x 8192, block 32, into reused buffers, with and without the report: this build
against other builds of slimops._C loaded beside it, and a copy of the same bytes, interleaved round
by round (minimum over the rounds). Usage: python ab.py ROUNDS [OTHER_C.so ...]"""
import importlib.util
import sys
import time

import torch

import slimops
from slimops._backend import native_module
from slimops.mx.formats import get_format

PAIRS = [("mxint8", "mxint6"), ("mxint8", "mxint4"), ("mxint8", "mxint2"), ("mxint6", "mxint4"),
         ("mxint6", "mxint2"), ("mxint4", "mxint2"), ("mxfp8_e4m3", "mxfp6_e3m2"), ("mxfp8_e4m3", "mxfp6_e2m3"),
         ("mxfp8_e4m3", "mxfp4_e2m1"), ("mxfp8_e5m2", "mxfp6_e3m2"), ("mxfp8_e5m2", "mxfp6_e2m3"),
         ("mxfp8_e5m2", "mxfp4_e2m1"), ("mxfp6_e3m2", "mxfp4_e2m1"), ("mxfp6_e2m3", "mxfp4_e2m1")]
ROWS, L, B = 8192, 8192, 32
rounds = int(sys.argv[1])
mods = [("this", native_module("_C"))]
for i, path in enumerate(sys.argv[2:]):  # a distinct package name per build, so that each loads its own copy
    spec = importlib.util.spec_from_file_location(f"other{i}._C", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    mods.append((path.rsplit("/", 1)[-1], m))
torch.manual_seed(0)
x = torch.randn(ROWS, L) * torch.rand(ROWS, 1) * 4
anchors = {s: slimops.mx.quantize(x, s, B) for s in sorted({s for s, _ in PAIRS})}
del x
cases = []
for s, d in PAIRS:
    a = anchors[s]
    fs, fd = get_format(s), get_format(d)
    od = torch.zeros(ROWS, fd.packed_bytes(L), dtype=torch.uint8)
    cases.append((s, d, a.data, a.scales, fs, fd, od, torch.zeros_like(a.scales), a.data.numel() + od.numel()))
counts = torch.zeros(8, dtype=torch.int64)
src = torch.ones(64 << 20, dtype=torch.uint8)
dst = torch.zeros_like(src)
nt = torch.get_num_threads()
best = {}


def timed(key, fn):
    t = time.perf_counter()
    fn()
    best[key] = min(best.get(key, 1e9), time.perf_counter() - t)


for r in range(rounds):
    timed("copy", lambda: dst.copy_(src))
    for c in cases:
        s, d, data, sc, fs, fd, od, osc, _ = c
        order = mods if r % 2 == 0 else mods[::-1]
        for name, m in order:
            for rep in ((False, True) if r % 2 == 0 else (True, False)):
                timed((s, d, name, rep), lambda: m.mx_convert(
                    data.data_ptr(), sc.data_ptr(), ROWS, L, od.data_ptr(), osc.data_ptr(), fs.format_id,
                    fd.format_id, B, False, nt, counts.data_ptr() if rep else 0))
copy_gbs = 2 * src.numel() / best["copy"] / 1e9
print(f"{torch.get_num_threads()} threads, path {mods[0][1].mx_convert_path()}, copy {copy_gbs:.1f} GB/s, "
      f"minimum of {rounds} rounds")
head = "| pair |" + "".join(f" {n} ms | of copy | report + |" for n, _ in mods)
print(head)
print("|---|" + "---|---|---|" * len(mods))
for s, d, *_, nbytes in cases:
    line = f"| {s} -> {d} |"
    for name, _ in mods:
        t, tr = best[(s, d, name, False)], best[(s, d, name, True)]
        line += f" {t * 1e3:.2f} | {nbytes / t / 1e9 / copy_gbs:.2f} | {100 * (tr / t - 1):+.0f} % |"
    print(line, flush=True)
