"""What a call that allocates its outputs costs, and what serves users by default (issue 17).

Each setting runs in a fresh process (the allocator's state, glibc's tunables and LD_PRELOAD are
per process), calls the op ``--calls`` times on the same input and prints the time per call (ms)
after the first: minimum, median, mean, 90th percentile and maximum. Settings:

* ``out=``: into buffers made once (``mx_convert_out`` / ``mx_quantize_out``): no allocation;
* ``default``: a plain call, outputs from torch's CPU allocator (glibc malloc: above its mmap
  threshold, at most 32 MiB, every output is a fresh mapping whose pages fault on first touch);
* ``huge-pages``: the same with ``SLIMOPS_HUGE_PAGES=1`` (the kernels ask for transparent huge
  pages on a large fresh output);
* ``glibc-tunables``: ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184
  MALLOC_TOP_PAD_=1073741824`` (the highest threshold glibc accepts; larger outputs still mmap);
* ``jemalloc``: ``LD_PRELOAD`` of libjemalloc (as PyTorch's CPU tuning guide suggests), where installed.

    python bench/slicescale/allocation.py [--shape 8192x8192] [--calls 30] [--out FILE.json]

Run it under ``flock /tmp/slimops-bench.lock`` like every benchmark whose numbers are reported.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

CASES = (("convert", "mxint8", "mxint4"), ("convert", "mxfp8_e4m3", "mxfp6_e2m3"), ("quantize", "float32", "mxfp8"),
         ("quantize", "bfloat16", "mxfp4"))
GLIBC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184",
         "MALLOC_TOP_PAD_": "1073741824"}

CHILD = r"""
import json, sys, time, torch, slimops
op, src, dst, rows, cols, calls, reuse = sys.argv[1:8]
rows, cols, calls, reuse = int(rows), int(cols), int(calls), reuse == "1"
x = torch.randn(rows, cols, generator=torch.Generator().manual_seed(0))
if op == "convert":
    a = slimops.mx.quantize(x, src)
    bufs = a.convert(dst)
    bufs = (bufs.data, bufs.scales)
    fn = (lambda: a.convert(dst, out=bufs)) if reuse else (lambda: a.convert(dst))
else:
    x = x.to(getattr(torch, src))
    t = slimops.mx.quantize(x, dst)
    bufs = (t.data, t.scales)
    fn = (lambda: slimops.mx.quantize(x, dst, out=bufs)) if reuse else (lambda: slimops.mx.quantize(x, dst))
times = []
for _ in range(calls + 1):
    t0 = time.perf_counter()
    r = fn()
    times.append((time.perf_counter() - t0) * 1e3)
    del r
print(json.dumps(times[1:]))
"""


def jemalloc() -> "str | None":
    found = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libjemalloc.so*") + glob.glob("/usr/lib/libjemalloc.so*"))
    return found[0] if found else None


def settings() -> list:
    out = [("out=", {}, True), ("default", {}, False), ("huge-pages", {"SLIMOPS_HUGE_PAGES": "1"}, False),
           ("glibc-tunables", GLIBC, False)]
    je = jemalloc()
    if je:
        out.append(("jemalloc", {"LD_PRELOAD": je}, False))
    return out


def stats(times: list) -> dict:
    s = sorted(times)
    n = len(s)
    return {"min": s[0], "median": s[n // 2], "mean": sum(s) / n, "p90": s[min(n - 1, int(0.9 * n))], "max": s[-1]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="8192x8192")
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--cases", type=int, nargs="+", default=list(range(len(CASES))),
                   help="which of CASES to run, by index (default: all)")
    args = p.parse_args(argv)
    rows, cols = (int(v) for v in args.shape.split("x"))
    results = []
    print(f"{'case':36} {'setting':15} {'min':>7} {'median':>7} {'mean':>7} {'p90':>7} {'max':>7}  (ms per call)")
    for op, src, dst in (CASES[i] for i in args.cases):
        for name, env, reuse in settings():
            e = dict(os.environ, **env)
            e.pop("SLIMOPS_HUGE_PAGES", None) if "SLIMOPS_HUGE_PAGES" not in env else None
            r = subprocess.run([sys.executable, "-c", CHILD, op, src, dst, str(rows), str(cols), str(args.calls),
                                "1" if reuse else "0"], env=e, capture_output=True, text=True, timeout=1800)
            if r.returncode:
                print(f"{op} {src}->{dst} {name}: failed: {r.stderr[-500:]}")
                continue
            st = stats(json.loads(r.stdout.strip().splitlines()[-1]))
            results.append({"op": op, "src": src, "dst": dst, "shape": [rows, cols], "setting": name, "env": env,
                            **st})
            print(f"{op + ' ' + src + ' -> ' + dst:36} {name:15} " + " ".join(f"{st[k]:7.2f}" for k in
                                                                              ("min", "median", "mean", "p90", "max")),
                  flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"calls": args.calls, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
