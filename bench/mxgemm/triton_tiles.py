"""Tile sweep of the Triton ``mx_linear`` kernel on a GPU: each (BM, BN, BK, warps, stages) at each M, checked
against dequantize + ``F.linear`` and timed with CUDA events beside cuBLAS (``F.linear`` on the bf16 weight).

Weights cycle through copies totalling >= 256 MiB (beyond the H200's 60 MiB L2), as ``slimops bench mxgemm``.
Prints one line per (fmt, M, tiles) and writes ``--out`` (JSON); SPLIT is the number of programs that share
K. Used to pick ``GPU_TILES`` in ``slimops/mxgemm/triton.py``.

    python bench/mxgemm/triton_tiles.py --out $OUT/tiles.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
import torch.nn.functional as F

import slimops
from slimops.mx.formats import get_format
from slimops.mxgemm import triton as mxt

SMALL = [dict(BM=16, BN=bn, BK=bk, SPLIT=sp, num_warps=4, num_stages=3)
         for sp, bn, bk in itertools.product((1, 2, 4, 8), (32, 64, 128), (128, 256))]
LARGE = [dict(BM=bm, BN=bn, BK=bk, SPLIT=1, num_warps=w, num_stages=3)
         for bm, bn, bk, w in ((64, 64, 64, 4), (128, 128, 64, 8), (128, 64, 64, 4), (64, 128, 64, 4),
                               (128, 128, 32, 8), (128, 256, 64, 8))]


def timed(fn, reps: int) -> float:
    """The minimum over 5 rounds of the mean of ``reps`` calls, in ms."""
    best = float("inf")
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        best = min(best, a.elapsed_time(b) / reps)
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fmts", nargs="+", default=["mxint4", "mxfp4_e2m1", "mxint8"])
    p.add_argument("--ms", nargs="+", type=int, default=[1, 16, 4096])
    p.add_argument("--k", type=int, default=4096)
    p.add_argument("--n", type=int, default=14336)
    p.add_argument("--budget-s", type=float, default=150.0, help="stop starting new configurations after this")
    p.add_argument("--out", default="tiles.json")
    a = p.parse_args()
    t0 = time.time()
    dev = torch.device("cuda")
    rows = []
    for fmt in a.fmts:
        f = get_format(fmt)
        w = torch.randn(a.n, a.k, device=dev)
        t = slimops.mx.quantize(w, fmt, 32)
        wd = t.dequantize(torch.bfloat16)
        copies = max(1, (256 << 20) // (t.data.numel() + t.scales.numel()))
        datas = [(t.data.clone(), t.scales.clone()) for _ in range(copies)]
        dense = [wd.clone() for _ in range(max(1, (256 << 20) // (wd.numel() * 2)))]
        for m in a.ms:
            x = torch.randn(m, a.k, device=dev, dtype=torch.bfloat16)
            ref = F.linear(x, wd)
            it = itertools.cycle(dense)
            cublas = timed(lambda: F.linear(x, next(it)), 20)
            configs = SMALL if m <= 16 else LARGE
            for cfg in configs:
                if time.time() - t0 > a.budget_s:
                    break
                saved = dict(mxt.GPU_TILES)
                mxt.GPU_TILES["small" if m <= 16 else "large"] = cfg
                try:
                    y = mxt.linear_2d(x, t.data, t.scales, f, 32, None, dot_scaled=False)
                    err = ((y.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                    its = itertools.cycle(datas)
                    ms = timed(lambda: mxt.linear_2d(x, *next(its), f, 32, None, dot_scaled=False), 20)
                    row = dict(fmt=fmt, M=m, K=a.k, N=a.n, **cfg, ms=ms, cublas_ms=cublas, vs_cublas=cublas / ms,
                               weight_gb_s=(t.data.numel() + t.scales.numel()) / ms / 1e6, rel_err=err)
                except Exception as e:  # noqa: BLE001 - a configuration that does not compile or fit: say so
                    row = dict(fmt=fmt, M=m, **cfg, error=f"{type(e).__name__}: {str(e)[:200]}")
                finally:
                    mxt.GPU_TILES.update(saved)
                rows.append(row)
                print(json.dumps(row), flush=True)
    with open(a.out, "w") as fh:
        json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
