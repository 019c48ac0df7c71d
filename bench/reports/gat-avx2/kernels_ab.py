"""A/B of the GAT CPU kernels on an AVX2-only CPU: the build of 5015a56 (before the AVX2 vector code) against the
installed one, on the same tensors, interleaved round by round, minimum of 60 rounds per op, 1 and 2 threads.

The old build is /tmp/g/abold/_C*.so beside an empty __init__.py (from a wheel of 5015a56 built with
SLIMOPS_SKIP_CUDA=ON), loaded as its own package ``abold._C`` so that both builds run in one process. From the
repository root: ``.venv/bin/python bench/reports/gat-avx2/kernels_ab.py cora 5000:4 20000:32``."""
import sys
import time

import torch

sys.path.insert(0, "/tmp/g")
import abold._C as old  # noqa: E402
import slimops._C as new  # noqa: E402
import slimops.gat.cpu as gc  # noqa: E402
from slimops.gat.bench import named_graph  # noqa: E402
from slimops.nn import FusedGATConv  # noqa: E402


def case(which):
    ei, H, C = named_graph(which, "/work/shared/data/planetoid")
    N = int(ei.max()) + 1
    g = FusedGATConv(H * C, C, heads=H).graph(ei, N, N, N)
    torch.manual_seed(0)
    h = torch.randn(N, H, C)
    att = torch.randn(2, H, C)
    a = gc.scores(h, att)
    a_src, a_dst = a[0].contiguous(), a[1].contiguous()
    out, lse = gc.forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
    go = torch.randn_like(out)
    return h, att, a, a_src, a_dst, g, out, lse, go, g.transposed()


def run(mod, name, h, att, a, a_src, a_dst, g, out, lse, go, csc):
    gc_native = gc.native_module
    gc.native_module = lambda _n: mod
    try:
        if name == "scores":
            return gc.scores(h, att)
        if name == "forward":
            return gc.forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
        if name == "backward":
            return gc.backward(go, h, a_src, a_dst, g.indptr, g.indices, out, lse, 0.2, 0.0, 0, 0, None, csc)
        return gc.scores_backward(a, h, att)
    finally:
        gc.native_module = gc_native


names = ["scores", "forward", "backward", "scores_bwd"]
for which in sys.argv[1:]:
    args = case(which)
    for n in names:
        ro, rn = run(old, n, *args), run(new, n, *args)
        ro = ro if isinstance(ro, tuple) else (ro,)
        rn = rn if isinstance(rn, tuple) else (rn,)
        err = max(float((x - y).abs().max() / (x.abs().max() + 1e-30)) for x, y in zip(ro, rn) if x.numel())
        same = all(torch.equal(x, y) for x, y in zip(ro, rn) if x.numel())
        print(f"{which} {n}: {'bitwise equal' if same else f'max diff {err:.2e} of the largest magnitude'}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best = {(m, n): 1e9 for m in ("old", "new") for n in names}
        for r in range(60):
            for m, mod in (("old", old), ("new", new)) if r % 2 else (("new", new), ("old", old)):
                for n in names:
                    t0 = time.perf_counter()
                    run(mod, n, *args)
                    best[(m, n)] = min(best[(m, n)], time.perf_counter() - t0)
        for n in names:
            print(f"{which:8s} {threads} thr {n:10s} old {best[('old', n)]*1e6:8.1f} us  new "
                  f"{best[('new', n)]*1e6:8.1f} us  x{best[('old', n)]/best[('new', n)]:.2f}", flush=True)
