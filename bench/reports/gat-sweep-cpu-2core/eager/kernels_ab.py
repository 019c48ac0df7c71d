"""A/B of the GAT CPU kernels: the build of 1143c08 (before this change) against the installed one, on the same
tensors, interleaved round by round, minimum of 60 rounds per op (2 threads).

The old build is /tmp/g/abold/_C*.so beside an empty __init__.py (a copy of the installed module taken before
the change), loaded as its own package ``abold._C`` so that both builds are in one process. Run from the
repository root: ``.venv/bin/python kernels_ab.py cora 5000:4 50000:4 20000:32``."""
import sys, time, torch
sys.path.insert(0, "/tmp/g")
import abold._C as _old


class _Old:
    """The pre-session module, called as the new cpu.py calls it (its gat_backward has no csc_ready)."""
    def __getattr__(self, name):
        if name == "gat_backward":
            return lambda *a: _old.gat_backward(*a[:-1])
        return getattr(_old, name)


old = _Old()
import slimops._C as new
from slimops.gat.bench import cora_graph, powerlaw_graph
from slimops.nn import FusedGATConv
import slimops.gat.cpu as gc
def case(which):
    if which == "cora":
        x, ei = cora_graph("/work/shared/data/planetoid"); H, C = 8, 8
    else:
        n, d = map(int, which.split(":")); ei = powerlaw_graph(n, d, seed=n + d); x = torch.randn(n, 256); H, C = 4, 32
    N = x.shape[0]
    g = FusedGATConv(x.shape[1], C, heads=H).graph(ei, N, N, N)
    torch.manual_seed(0)
    h = torch.randn(N, H, C); att = torch.randn(2, H, C)
    a = gc.scores(h, att); a_src, a_dst = a[0].contiguous(), a[1].contiguous()
    out, lse = gc.forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
    go = torch.randn_like(out)
    return h, att, a, a_src, a_dst, g, out, lse, go
def run(mod, name, h, att, a, a_src, a_dst, g, out, lse, go, nt):
    gc_native = gc.native_module
    gc.native_module = lambda _n: mod
    try:
        if name == "scores": return gc.scores(h, att)
        if name == "forward": return gc.forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
        if name == "backward": return gc.backward(go, h, a_src, a_dst, g.indptr, g.indices, out, lse, 0.2, 0.0, 0, 0)
        if name == "scores_bwd": return gc.scores_backward(a, h, att)
    finally:
        gc.native_module = gc_native
for which in sys.argv[1:]:
    args = case(which)
    names = ["scores", "forward", "backward", "scores_bwd"]
    best = {(m, n): 1e9 for m in ("old", "new") for n in names}
    for n in names:
        ro, rn = run(old, n, *args, 2), run(new, n, *args, 2)
        ro = ro if isinstance(ro, tuple) else (ro,); rn = rn if isinstance(rn, tuple) else (rn,)
        err = max(float((x - y).abs().max() / (x.abs().max() + 1e-30)) for x, y in zip(ro, rn) if x.numel())
        same = all(torch.equal(x, y) for x, y in zip(ro, rn) if x.numel())
        print(f"{which} {n}: {'bitwise equal' if same else f'max rel diff {err:.2e}'}")
    for r in range(60):
        for m, mod in (("old", old), ("new", new)) if r % 2 else (("new", new), ("old", old)):
            for n in names:
                t0 = time.perf_counter(); run(mod, n, *args, 2); best[(m, n)] = min(best[(m, n)], time.perf_counter() - t0)
    for n in names:
        print(f"{which:8s} {n:10s} old {best[('old', n)]*1e6:8.1f} us  new {best[('new', n)]*1e6:8.1f} us  x{best[('old', n)]/best[('new', n)]:.2f}")
