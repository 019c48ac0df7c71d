"""The MX CPU kernels alone, this build's against another's, in one process: no op dispatch, no
allocation (outputs preallocated and touched), min over interleaved rounds; Gelem/s.

    python kernels_only.py BASELINE_C_SO [--threads 1 2] [--rows 256 8192]

rows x 2048 elements: 256 rows (1 MB of bf16) stays in the L2 cache, 8192 rows (32 MB) does not.
"""

import argparse
import importlib.util
import time

import torch

from slimops._backend import native_module
from slimops.mx.formats import DTYPE_CODES, get_format

p = argparse.ArgumentParser()
p.add_argument("baseline")
p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
p.add_argument("--rows", type=int, nargs="+", default=[256, 8192])
p.add_argument("--rounds", type=int, default=30)
args = p.parse_args()
spec = importlib.util.spec_from_file_location("_C", args.baseline)
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
new = native_module("_C")
L = 2048
print("rows threads dtype op fmt : after before (Gelem/s) speed-up")
for rows in args.rows:
    for th in args.threads:
        for dt in (torch.float32, torch.bfloat16, torch.float16):
            x = torch.randn(rows, L).to(dt)
            out = torch.zeros_like(x)
            cases = []
            for fmt in ("mxfp8", "mxint8", "mxfp4"):
                f = get_format(fmt)
                data = torch.zeros(rows, f.packed_bytes(L), dtype=torch.uint8)
                sc = torch.zeros(rows, L // 32, dtype=torch.uint8)
                q = lambda lib, f=f, data=data, sc=sc: lib.mx_quantize(  # noqa: E731
                    x.data_ptr(), DTYPE_CODES[dt], rows, L, data.data_ptr(), sc.data_ptr(), f.format_id, 32, 0,
                    False, 0, th)
                cases.append(("quantize", fmt, q))
                if fmt == "mxfp8":
                    q(new)
                    cases.append(("dequantize", fmt, lambda lib, f=f, data=data, sc=sc: lib.mx_dequantize(
                        data.data_ptr(), sc.data_ptr(), rows, L, out.data_ptr(), DTYPE_CODES[dt], f.format_id, 32, th)))
                    cases.append(("fake_quantize", fmt, lambda lib, f=f: lib.mx_fake_quantize(
                        x.data_ptr(), DTYPE_CODES[dt], rows, L, out.data_ptr(), f.format_id, 32, 0, False, 0, th)))
            best = {}
            for _ in range(args.rounds):
                for op, fmt, fn in cases:
                    for name, lib in (("after", new), ("before", old)):
                        t0 = time.perf_counter()
                        fn(lib)
                        dt_s = time.perf_counter() - t0
                        k = (op, fmt, name)
                        best[k] = min(best.get(k, 1e9), dt_s)
            for op, fmt, _ in cases:
                a, b = rows * L / best[(op, fmt, "after")] / 1e9, rows * L / best[(op, fmt, "before")] / 1e9
                print(f"{rows} {th} {str(dt)[6:]} {op} {fmt} : {a:.2f} {b:.2f} {a / b:.2f}x", flush=True)
