"""MX quantize into reused buffers (out=), every format, fp32 and bf16, 4096 x 4096, block 32: all 18 cases and a
copy of the bf16 input interleaved round by round in one process, the minimum of each over the rounds. A case's
fraction of copy is its bytes moved (input read, codes and scales written) per second over the copy's (2 x 32 MiB
per call) at its best round. Run: .venv/bin/python quantize_interleaved.py [rounds] > result.txt"""
import sys
import time

import torch

import slimops
from slimops.mx.formats import FORMATS

torch.set_num_threads(2)
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
n = 4096
fmts = list(FORMATS)
g = torch.Generator().manual_seed(0)
xs = {dt: torch.randn(n, n, generator=g).to(dt) for dt in (torch.float32, torch.bfloat16)}
src, dst = xs[torch.bfloat16], torch.empty_like(xs[torch.bfloat16])
cases = {}
for dt, x in xs.items():
    for f in fmts:
        t = slimops.mx.quantize(x, f)
        cases[(str(dt).split(".")[-1], f)] = (x, torch.empty_like(t.data), torch.empty_like(t.scales))
best = {k: float("inf") for k in cases}
best_copy = float("inf")
for r in range(rounds):
    t0 = time.perf_counter()
    dst.copy_(src)
    best_copy = min(best_copy, time.perf_counter() - t0)
    for k, (x, d, s) in cases.items():
        t0 = time.perf_counter()
        torch.ops.slimops.mx_quantize_out(x, k[1], 32, -1, "floor", False, 0, d, s)
        best[k] = min(best[k], time.perf_counter() - t0)
copy_bw = 2 * src.numel() * src.element_size() / best_copy
print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {rounds} rounds, torch {torch.__version__}, "
      f"copy {copy_bw / 1e9:.1f} GB/s (best of {rounds})")
print("| dtype | format | ms | GB/s | of copy |")
print("|---|---|---|---|---|")
for k, (x, d, s) in cases.items():
    moved = x.numel() * x.element_size() + d.numel() + s.numel()
    print(f"| {k[0]} | {k[1]} | {best[k] * 1e3:.3f} | {moved / best[k] / 1e9:.1f} | {moved / best[k] / copy_bw:.3f} |")
