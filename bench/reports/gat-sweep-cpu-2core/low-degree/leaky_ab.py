"""A/B of the GAT CPU kernels in one process: /tmp/oldpkg/oldpkg/_C*.so is the previous commit (2c5a6fc) built with
`cmake -S <worktree> -B /tmp/oldbuild -DSLIMOPS_SKIP_CUDA=ON -DCMAKE_BUILD_TYPE=Release ...; cmake --build /tmp/oldbuild --target _C`,
loaded as a second module; slimops.gat.cpu is pointed at one or the other round by round."""
import sys, time, torch
sys.path.insert(0, "/tmp/oldpkg")
torch.set_num_threads(2)
import slimops.gat.cpu as gcpu
from slimops._backend import native_module
import oldpkg._C as old
new = native_module("_C")
from slimops.gat.bench import cora_graph, powerlaw_graph, _slimops_gat
def graphs():
    x, ei = cora_graph("/work/shared/data/planetoid"); yield "cora", x, ei, 8, 8
    for n, d in ((5000, 4), (50000, 4), (20000, 32)):
        yield f"{n // 1000}k deg {d}", torch.randn(n, 256, generator=torch.Generator().manual_seed(1)), powerlaw_graph(n, d, seed=n + d), 4, 32
for name, x, ei, H, C in graphs():
    f = _slimops_gat()(x.shape[1], C, heads=H)
    with torch.no_grad():
        h = f.lin(x).view(-1, H, C)
        a_src, a_dst = torch.ops.slimops.gat_scores(h, torch.cat([f.att_src, f.att_dst]))
    g = f.graph(ei, x.shape[0], x.shape[0], x.shape[0], add_loops=True)
    out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
    go = torch.randn_like(out)
    mods = {"before": old, "after": new}
    best = {(m, op): 1e9 for m in mods for op in ("fwd", "bwd")}
    for r in range(60):
        for m, mod in mods.items():
            gcpu.native_module = lambda name, mod=mod: mod
            t0 = time.perf_counter(); torch.ops.slimops.gat_forward(h, a_src, a_dst, g.indptr, g.indices, 0.2, 0.0, 0, 0)
            best[(m, "fwd")] = min(best[(m, "fwd")], time.perf_counter() - t0)
            t0 = time.perf_counter(); torch.ops.slimops.gat_backward(go, h, a_src, a_dst, g.indptr, g.indices, out, lse, 0.2, 0.0, 0, 0)
            best[(m, "bwd")] = min(best[(m, "bwd")], time.perf_counter() - t0)
    gcpu.native_module = native_module
    print(f"{name:12s} E={g.indices.numel():8d} H={H} C={C}  fwd {best[('before','fwd')]*1e3:.3f} -> {best[('after','fwd')]*1e3:.3f} ms"
          f"  bwd {best[('before','bwd')]*1e3:.3f} -> {best[('after','bwd')]*1e3:.3f} ms", flush=True)
