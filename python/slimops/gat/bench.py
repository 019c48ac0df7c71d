"""GAT benchmark suite: one GAT layer, forward + backward, slimops vs PyG GATConv vs the reference.

Providers (all the same layer, same weights): ``slimops`` (FusedGATConv, backend auto: C++ on CPU,
Triton on CUDA), ``reference`` (FusedGATConv over the pure-PyTorch reference op), ``pyg`` (PyG
GATConv, when installed), ``pyg_fused`` (PyG's FusedGATConv, only where dgNN is installed; else
skipped and said so). Graphs: power-law graphs of growing size and average degree, and Cora.

Per (graph, provider):

* ``ms``: one training step of the layer (forward, then backward of ``out.backward(g)``), the
  minimum over rounds, providers interleaved round by round (CPU numbers drift on a shared machine).
* ``peak_mib``: bytes the step allocates above what exists before it (inputs, parameters, the cached
  CSR), the same way for every provider: on CUDA ``max_memory_allocated``; on CPU from the
  profiler's memory timeline (every allocation of torch's CPU allocator, inside custom ops too;
  not the small per-thread std::vector buffers of the C++ kernels).
* ``saved_mib``: bytes of the tensors autograd keeps for backward (``saved_tensors_hooks``), unique
  storages, not counting inputs and parameters.

Standalone: ``python -m slimops.gat.bench [--quick] [--device cpu] [--out bench/reports/gat-cpu]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time

import torch

SUITE = "gat"


# ----------------------------------------------------------------------------- graphs


def powerlaw_graph(n: int, avg_deg: int, seed: int = 0, exponent: float = 0.8) -> torch.Tensor:
    """edge_index [2, n * avg_deg]: Zipf-like source popularity and destination in-degree."""
    g = torch.Generator().manual_seed(seed)
    e = n * avg_deg
    w = 1.0 / torch.arange(1, n + 1, dtype=torch.float64) ** exponent
    src = torch.randperm(n, generator=g)[torch.multinomial(w, e, replacement=True, generator=g)]
    dst = torch.randperm(n, generator=g)[torch.multinomial(w, e, replacement=True, generator=g)]
    return torch.stack([src, dst])


def cora_graph(root: str):
    from ..data import load_planetoid

    d = load_planetoid(root, "cora", normalize_features=False)
    return d.x, d.edge_index


# ----------------------------------------------------------------------------- providers


def providers(device: str) -> dict:
    """name -> (layer class, backend or None, note)."""
    from .conv import FusedGATConv

    out = {"slimops": (FusedGATConv, "auto", ""), "reference": (FusedGATConv, "reference", "")}
    try:
        from torch_geometric.nn import GATConv

        out["pyg"] = (GATConv, None, "")
    except ImportError:
        out["pyg"] = (None, None, "PyG not installed")
    try:
        import dgNN  # noqa: F401
        from torch_geometric.nn import FusedGATConv as PygFused

        out["pyg_fused"] = (PygFused, None, "") if device == "cuda" else (None, None, "dgNN is CUDA only")
    except ImportError:
        out["pyg_fused"] = (None, None, "dgNN not installed (PyG's FusedGATConv needs it)")
    return out


def _backend(name):
    import slimops

    return slimops.use_backend(name) if name else contextlib.nullcontext()


# ----------------------------------------------------------------------------- measurement


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _step(layer, x, edge_index, g, backend):
    with _backend(backend):
        out = layer(x, edge_index)
        out.backward(g)


def _time_once(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def peak_bytes(fn, device) -> int:
    """Bytes allocated above the starting point at the step's peak."""
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
    cur = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        if action == Action.CREATE:
            cur += size
        elif action == Action.DESTROY:
            cur -= size
        peak = max(peak, cur)
    return peak


def saved_bytes(layer, x, edge_index, backend) -> int:
    """Bytes of the unique storages autograd saves for backward, inputs and parameters excluded."""
    exclude = {t.untyped_storage().data_ptr() for t in [x, *layer.parameters()]}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in exclude:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _backend(backend):
        out = layer(x, edge_index)
    del out
    return sum(seen.values())


def bench_graph(name, x, edge_index, heads, channels, device, rounds, provs, out_rows, log=print):
    n, f_in = x.shape
    x = x.to(device).requires_grad_()
    edge_index = edge_index.to(device)
    torch.manual_seed(0)
    layers, ref_state = {}, None
    for pname, (cls, backend, note) in provs.items():
        if cls is None:
            out_rows.append(dict(graph=name, provider=pname, skipped=note))
            continue
        layer = cls(f_in, channels, heads=heads).to(device)
        if ref_state is None:
            ref_state = layer.state_dict()
        else:
            layer.load_state_dict(ref_state)
        layers[pname] = (layer, backend)
    g = torch.randn(n, heads * channels, device=device)
    rows = {}
    for pname, (layer, backend) in layers.items():
        fn = lambda: _step(layer, x, edge_index, g, backend)  # noqa: E731
        fn()  # warmup; builds and caches the CSR (FusedGATConv)
        rows[pname] = dict(graph=name, provider=pname, nodes=n, edges=edge_index.shape[1],
                           avg_degree=round(edge_index.shape[1] / n, 1), heads=heads, channels=channels,
                           peak_mib=peak_bytes(fn, device) / 2**20,
                           saved_mib=saved_bytes(layer, x, edge_index, backend) / 2**20, times=[])
    for _ in range(rounds):  # interleaved
        for pname, (layer, backend) in layers.items():
            rows[pname]["times"].append(_time_once(lambda: _step(layer, x, edge_index, g, backend), device))
    for pname, r in rows.items():
        r["ms"] = 1e3 * min(r.pop("times"))
        log(f"  {name:24s} {pname:10s} {r['ms']:9.1f} ms  peak {r['peak_mib']:8.1f} MiB  "
            f"saved {r['saved_mib']:8.2f} MiB")
        out_rows.append(r)
    return rows


def add_ratios(rows):
    by = {}
    for r in rows:
        if "ms" in r:
            by.setdefault(r["graph"], {})[r["provider"]] = r
    for graph, ps in by.items():
        ours = ps.get("slimops")
        if ours is None:
            continue
        for base in ("pyg", "reference"):
            if base in ps:
                ours[f"speedup_vs_{base}"] = ps[base]["ms"] / ours["ms"]
                ours[f"mem_ratio_vs_{base}"] = ps[base]["peak_mib"] / max(ours["peak_mib"], 1e-9)


CONFIGS_FULL = [(5000, 4), (5000, 16), (5000, 64), (20000, 4), (20000, 16), (20000, 32), (20000, 64)]
CONFIGS_QUICK = [(2000, 4), (2000, 16)]


def run(device="cpu", quick=False, rounds=3, out_dir=None, cora_root="/work/shared/data/planetoid",
        heads=4, channels=32, f_in=256, log=print, configs=None, cora=True, only=None):
    """Measure every config (and Cora); with ``out_dir`` the report is rewritten after each graph."""
    provs = {k: v for k, v in providers(device).items() if only is None or k in only}
    rows = []
    meta = dict(device=device, cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                torch=torch.__version__, time=time.strftime("%Y-%m-%d %H:%M:%S"), rounds=rounds,
                heads=heads, channels=channels, in_channels=f_in)
    if device == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()

    def save():
        add_ratios(rows)
        if out_dir:
            write_report(out_dir, meta, rows)

    for n, deg in configs or (CONFIGS_QUICK if quick else CONFIGS_FULL):
        ei = powerlaw_graph(n, deg, seed=n + deg)
        x = torch.randn(n, f_in, generator=torch.Generator().manual_seed(1))
        sel = provs if n * deg <= 400_000 or quick else {k: v for k, v in provs.items() if k != "reference"}
        if sel is not provs:
            rows.append(dict(graph=f"powerlaw n={n} deg={deg}", provider="reference",
                             skipped="not run above 400k edges (minutes per step here)"))
        bench_graph(f"powerlaw n={n} deg={deg}", x, ei, heads, channels, device, rounds, sel, rows, log)
        save()
    if cora and os.path.isdir(cora_root):
        x, ei = cora_graph(cora_root)
        bench_graph("cora (8x8)", x, ei, 8, 8, device, rounds, provs, rows, log)
    elif cora:
        rows.append(dict(graph="cora", provider="*", skipped=f"Cora raw files not found under {cora_root}"))
    save()
    return meta, rows


def write_report(out_dir, meta, rows):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench_gat.json"), "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    cols = ["graph", "provider", "edges", "ms", "peak_mib", "saved_mib", "speedup_vs_pyg", "mem_ratio_vs_pyg",
            "speedup_vs_reference", "mem_ratio_vs_reference", "skipped"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.2f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(out_dir, "bench_gat.md"), "w") as f:
        f.write(f"# GAT layer fwd+bwd ({meta})\n\n" + "\n".join(lines) + "\n")
    try:
        plot(out_dir, rows)
    except Exception as exc:  # matplotlib missing or headless trouble: the tables are the result
        print(f"plot skipped: {exc}")


def plot(out_dir, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = [r for r in rows if r.get("provider") == "slimops" and "speedup_vs_pyg" in r and "powerlaw" in r["graph"]]
    if not ours:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for n in sorted({r["nodes"] for r in ours}):
        sel = sorted((r for r in ours if r["nodes"] == n), key=lambda r: r["avg_degree"])
        deg = [r["avg_degree"] for r in sel]
        axes[0].plot(deg, [r["speedup_vs_pyg"] for r in sel], "o-", label=f"N={n}")
        axes[1].plot(deg, [r["mem_ratio_vs_pyg"] for r in sel], "o-", label=f"N={n}")
    axes[0].set(xscale="log", xlabel="average degree", ylabel="PyG time / slimops time", title="speed-up vs PyG")
    axes[1].set(xscale="log", xlabel="average degree", ylabel="PyG peak / slimops peak", title="memory vs PyG")
    for ax in axes:
        ax.axhline(1.0, color="gray", lw=0.5)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bench_gat.png"), dpi=100)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--cora-root", default="/work/shared/data/planetoid")
    ap.add_argument("--configs", default=None, help="N:deg,N:deg,... power-law graphs (default: the full sweep)")
    ap.add_argument("--no-cora", action="store_true")
    ap.add_argument("--providers", default=None, help="comma-separated subset of slimops,reference,pyg,pyg_fused")
    a = ap.parse_args(argv)
    configs = [tuple(int(v) for v in c.split(":")) for c in a.configs.split(",")] if a.configs else None
    only = set(a.providers.split(",")) if a.providers else None
    run(a.device, a.quick, a.rounds, a.out, a.cora_root, configs=configs, cora=not a.no_cora, only=only)


if __name__ == "__main__":
    main()


# ----------------------------------------------------------------------------- the common runner's suite

from ..benchmarks.runner import Case, Skip, Suite, quiet_peer  # noqa: E402


def _reference_conv():
    """FusedGATConv whose attention is autograd through the pure-PyTorch reference forward (E x H x C
    messages materialised): the unfused eager baseline, independent of the selected backend."""
    from .conv import FusedGATConv
    from . import reference

    class ReferenceGATConv(FusedGATConv):
        def attention(self, h, a_src, a_dst, indptr, indices):
            return reference.forward(h, a_src, a_dst, indptr, indices, self.negative_slope, 0.0, 0, 0)[0]

    return ReferenceGATConv


class GATSuite(Suite):
    """One GAT layer (FusedGATConv vs PyG GATConv vs the reference), forward and forward + backward.

    Providers: ``slimops`` (FusedGATConv, the backend auto picks), ``reference`` (autograd through the
    pure-PyTorch reference), ``pyg`` (PyG GATConv), ``pyg_fused`` (PyG FusedGATConv where dgNN is
    installed). ``work``: the bytes of the edge gathers a fused pass needs (E x H x C features, once
    forward, twice backward). ``bytes_saved`` of each provider is in ``note``.
    """

    name = "gat"
    title = "GAT layer (fused attention): forward and forward+backward"
    providers = ("slimops", "reference", "pyg", "pyg_fused")
    oracle = "reference"
    speedups = {"speedup_vs_pyg": "pyg", "speedup_vs_reference": "reference"}
    case_columns = ("graph", "nodes", "avg_degree", "heads", "channels")
    modes = ("forward", "full")

    def add_arguments(self, p):
        p.add_argument("--configs", default=None, help="N:deg,... power-law graphs (default 5000:4,5000:16,20000:32)")
        p.add_argument("--cora-root", default="/work/shared/data/planetoid")

    def cases(self, args, device):
        configs = getattr(args, "configs", None)
        if configs:
            configs = [tuple(int(v) for v in c.split(":")) for c in configs.split(",")]
        elif getattr(args, "quick", False):
            configs = CONFIGS_QUICK
        else:
            configs = [(5000, 4), (5000, 16), (20000, 32)]
        out = []
        for mode in self.modes:
            for n, deg in configs:
                out.append(Case(device, dict(graph="powerlaw", nodes=n, avg_degree=deg, heads=4, channels=32), mode))
            root = getattr(args, "cora_root", "/work/shared/data/planetoid")
            if os.path.isdir(root) and not getattr(args, "quick", False):
                out.append(Case(device, dict(graph="cora", nodes=2708, avg_degree=3.9, heads=8, channels=8,
                                             root=root), mode))
        return out

    def inputs(self, case):
        if case.graph == "cora":
            x, ei = cora_graph(case.params["root"])
        else:
            ei = powerlaw_graph(case.nodes, case.avg_degree, seed=case.nodes + case.avg_degree)
            x = torch.randn(case.nodes, 256, generator=torch.Generator().manual_seed(1))
        return dict(x=x.to(case.device).requires_grad_(case.mode != "forward"), edge_index=ei.to(case.device),
                    state={})

    def build(self, case, provider, inputs, budget):
        from .conv import FusedGATConv

        if provider == "slimops":
            cls = FusedGATConv
        elif provider == "reference":
            cls = _reference_conv()
        elif provider == "pyg":
            try:
                with quiet_peer("torch_geometric"):
                    from torch_geometric.nn import GATConv as cls
            except ImportError:
                raise Skip("PyG not installed") from None
        else:
            cls, _, note = providers(case.device)["pyg_fused"]
            if cls is None:
                raise Skip(note)
        x, ei = inputs["x"], inputs["edge_index"]
        torch.manual_seed(0)
        layer = cls(x.shape[1], case.channels, heads=case.heads).to(case.device)
        if inputs["state"]:
            layer.load_state_dict(inputs["state"])
        else:
            inputs["state"].update(layer.state_dict())
        layer(x, ei)  # builds the cached CSR (FusedGATConv) outside the timed calls
        note = f"saved for backward {saved_bytes(layer, x, ei, None) / 2**20:.2f} MiB"
        return (lambda: layer(x, ei)), note

    def work(self, case):
        if case.graph == "cora":
            edges = 10556 + 2708
        else:
            edges = case.nodes * case.avg_degree + case.nodes
        gathers = edges * case.heads * case.channels * 4
        return gathers * (1 if case.mode == "forward" else 3)

    def compare(self, case, provider, out, oracle_out):
        if not isinstance(out, torch.Tensor) or not isinstance(oracle_out, torch.Tensor):
            return None
        return bool(torch.allclose(out.float(), oracle_out.float(), atol=1e-4, rtol=1e-4))


SUITE = GATSuite()
