"""GAT benchmark suite (``slimops bench gat``): one attention layer, forward and backward, slimops vs PyG.

Each case is one layer (``layer``: ``gat``, i.e. FusedGATConv vs PyG ``GATConv``; a ``gatv2`` entry of
:data:`LAYERS` takes the same cases) on one graph: power-law graphs (:func:`powerlaw_graph`, Zipf-like source
popularity and in-degrees) of N nodes and average degree d, 256 input features, 4 heads x 32 channels, and Cora
(1433 -> 8 heads x 8). Providers, timed in the same interleaved rounds by the common runner:

* ``slimops``: the fused layer (backend ``auto``: C++ on the CPU);
* ``pyg``: PyG's layer with the same weights; ``pyg_fused``: PyG's FusedGATConv (dgNN, CUDA only; else skipped);
* ``reference``: the fused layer over the pure-PyTorch reference (E x H x C messages; small graphs only);
* ``projection``: the layer's dense projection alone (``x W^T``, forward and backward, x requiring grad), the
  part both layers share;
* ``slimops_attention``, ``pyg_attention`` (layer ``gat``): the attention part timed directly, the same two
  layers with ``lin`` replaced by the identity, on a projected input h [N, H * C] requiring grad.

Derived columns: ``attention_ms`` = the ``*_attention`` provider's time where there is one, else a layer's time
minus the projection's (minimums over the same rounds; ``attention_median_ms`` likewise from medians; on Cora the
projection is 90 % of the layer, and the difference of two noisy times varied by 30 % between runs: hence the
direct measurement), ``attention_speedup_vs_pyg``, ``saved_mib`` (bytes of the
distinct storages autograd keeps for backward, inputs and parameters excluded, through
``saved_tensors_hooks``) and ``saved_ratio_vs_pyg``. ``--sweep``: N in {5k, 20k, 50k} x d in {4, 16, 32, 64}
and Cora, forward + backward only. ``python -m slimops.gat.bench results/bench_gat.json`` prints the
summary table of a report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ..benchmarks.runner import Case, Skip, Suite, quiet_peer

SUITE_NAME = "gat"
DEFAULT_CONFIGS = [(5000, 4), (5000, 16), (20000, 32)]
QUICK_CONFIGS = [(2000, 4), (2000, 16)]
SWEEP_NODES, SWEEP_DEGREES = (5000, 20000, 50000), (4, 16, 32, 64)
REFERENCE_MAX_EDGES = 400_000  # the pure-PyTorch reference takes minutes per step beyond this here


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


def named_graph(which: str, root: str):
    """The graphs of the A/B scripts in bench/reports/gat-avx2/: ``"cora"`` (from the Planetoid files under
    ``root``; 8 heads of 8 channels, as PyG's Cora example) or ``"N:degree"`` (:func:`powerlaw_graph` with seed
    N + degree; 4 heads of 32): ``(edge_index, heads, channels)``."""
    if which == "cora":
        return cora_graph(root)[1], 8, 8
    n, d = map(int, which.split(":"))
    return powerlaw_graph(n, d, seed=n + d), 4, 32


# ----------------------------------------------------------------------------- layers


def _slimops_gat():
    from .conv import FusedGATConv

    return FusedGATConv


def _slimops_gatv2():
    try:
        from ..nn import FusedGATv2Conv
    except ImportError:
        raise Skip("slimops.nn.FusedGATv2Conv is not in this build") from None
    return FusedGATv2Conv


def _pyg(name):
    def get():
        try:
            with quiet_peer("torch_geometric"):
                import torch_geometric.nn as pyg_nn
        except ImportError:
            raise Skip("PyG not installed") from None
        return getattr(pyg_nn, name)
    return get


def _reference_gat():
    """FusedGATConv whose attention is autograd through the pure-PyTorch reference forward (E x H x C messages
    materialised): the unfused eager baseline, whatever backend is selected."""
    from . import reference
    from .conv import FusedGATConv

    class ReferenceGATConv(FusedGATConv):
        def attention(self, h, a_src, a_dst, indptr, indices, a_edge=None, seed: int = 0):
            return reference.forward(h, a_src, a_dst, indptr, indices, self.negative_slope, 0.0, 0, 0, a_edge)

    return ReferenceGATConv


def _projection_gat(f_in, heads, channels):
    """GATConv's dense part: one bias-free Linear(F, H * C)."""
    return torch.nn.Linear(f_in, heads * channels, bias=False)


class _TwoLinears(torch.nn.Module):
    """GATv2Conv's dense part: lin_l and lin_r (with bias), both applied to x."""

    def __init__(self, f_in, heads, channels):
        super().__init__()
        self.lin_l = torch.nn.Linear(f_in, heads * channels)
        self.lin_r = torch.nn.Linear(f_in, heads * channels)

    def forward(self, x):
        return self.lin_l(x) + self.lin_r(x)


# layer -> provider -> a function returning the layer's class (raising Skip when it cannot run), and the
# projection that layer shares with its peer. The GATv2 provider plugs in here (slimops.nn.FusedGATv2Conv).
LAYERS = {
    "gat": dict(slimops=_slimops_gat, pyg=_pyg("GATConv"), reference=_reference_gat, projection=_projection_gat),
    "gatv2": dict(slimops=_slimops_gatv2, pyg=_pyg("GATv2Conv"), projection=_TwoLinears),
}


def _pyg_fused(device):
    try:
        import dgNN  # noqa: F401
    except ImportError:
        raise Skip("dgNN not installed (PyG's FusedGATConv needs it)") from None
    if device != "cuda":
        raise Skip("dgNN is CUDA only")
    from torch_geometric.nn import FusedGATConv as PygFused

    return PygFused


# ----------------------------------------------------------------------------- measurement helpers


def saved_bytes(layer, x, edge_index) -> int:
    """Bytes of the distinct storages autograd saves for backward, inputs and parameters excluded."""
    exclude = {t.untyped_storage().data_ptr() for t in [x, *layer.parameters()]}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in exclude:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x, edge_index)
    del out
    return sum(seen.values())


# ----------------------------------------------------------------------------- the suite


class GATSuite(Suite):
    """One GAT layer (slimops vs PyG vs the reference) and its shared projection, forward and forward + backward."""

    name = SUITE_NAME
    title = "GAT layer (fused attention): forward and forward+backward"
    providers = ("slimops", "pyg", "pyg_fused", "reference", "projection", "slimops_attention", "pyg_attention")
    oracle = "reference"
    speedups = {"speedup_vs_pyg": "pyg", "speedup_vs_reference": "reference"}
    case_columns = ("layer", "graph", "nodes", "avg_degree", "heads", "channels")
    modes = ("forward", "full")
    extra_columns = ("attention_ms", "attention_median_ms", "attention_speedup_vs_pyg", "saved_mib",
                     "saved_ratio_vs_pyg")
    table_columns = [("time_ms", "ms"), ("median_ms", "median"), ("attention_ms", "attn ms"),
                     ("attention_speedup_vs_pyg", "attn x pyg"), ("saved_mib", "saved MiB"),
                     ("peak_mem_mb", "peak MB")]
    roofline = False  # a gather-bound layer: the copy bandwidth says little here

    def __init__(self):
        self._saved = {}

    def add_arguments(self, p):
        g = p.add_argument_group("gat")
        g.add_argument("--configs", default=None, help="N:deg,... power-law graphs (default 5000:4,5000:16,20000:32)")
        g.add_argument("--sweep", action="store_true",
                       help="the degree sweep: N in 5k, 20k, 50k x degree 4, 16, 32, 64, and Cora; full mode only")
        g.add_argument("--layers", nargs="+", default=["gat"], choices=sorted(LAYERS), help="layers to measure")
        g.add_argument("--cora-root", default="/work/shared/data/planetoid")

    def cases(self, args, device):
        configs = getattr(args, "configs", None)
        sweep = getattr(args, "sweep", False)
        if configs:
            configs = [tuple(int(v) for v in c.split(":")) for c in configs.split(",")]
        elif sweep:
            configs = [(n, d) for n in SWEEP_NODES for d in SWEEP_DEGREES]
        elif getattr(args, "quick", False):
            configs = QUICK_CONFIGS
        else:
            configs = DEFAULT_CONFIGS
        root = getattr(args, "cora_root", "/work/shared/data/planetoid")
        cora = os.path.isdir(root) and not getattr(args, "quick", False)
        out = []
        for layer in getattr(args, "layers", ["gat"]):
            for mode in (("full",) if sweep else self.modes):
                for n, deg in configs:
                    out.append(Case(device, dict(layer=layer, graph="powerlaw", nodes=n, avg_degree=deg, heads=4,
                                                 channels=32), mode))
                if cora:
                    out.append(Case(device, dict(layer=layer, graph="cora", nodes=2708, avg_degree=3.9, heads=8,
                                                 channels=8, root=root), mode))
        return out

    def inputs(self, case):
        if case.graph == "cora":
            x, ei = cora_graph(case.params["root"])
        else:
            ei = powerlaw_graph(case.nodes, case.avg_degree, seed=case.nodes + case.avg_degree)
            x = torch.randn(case.nodes, 256, generator=torch.Generator().manual_seed(1))
        h = torch.randn(x.shape[0], case.heads * case.channels, generator=torch.Generator().manual_seed(2))
        return dict(x=x.to(case.device).requires_grad_(case.mode != "forward"), edge_index=ei.to(case.device),
                    h=h.to(case.device).requires_grad_(case.mode != "forward"), state={})

    def build(self, case, provider, inputs, budget):
        x, ei = inputs["x"], inputs["edge_index"]
        spec = LAYERS[case.layer]
        torch.manual_seed(0)
        if provider == "projection":
            proj = spec["projection"](x.shape[1], case.heads, case.channels).to(case.device)
            return (lambda: proj(x)), "the dense projection both layers compute"
        if provider.endswith("_attention"):
            if case.layer != "gat":
                raise Skip("the gatv2 suite times its attention part itself")
            h = inputs["h"]
            layer = spec[provider[:-len("_attention")]]()(h.shape[1], case.channels, heads=case.heads).to(case.device)
            layer.lin = torch.nn.Identity()
            layer(h, ei)
            return (lambda: layer(h, ei)), "the attention alone (lin = identity)"
        if provider == "pyg_fused":
            if case.layer != "gat":
                raise Skip("PyG has no fused GATv2")
            cls = _pyg_fused(case.device)
        elif provider not in spec:
            raise Skip(f"no {provider} provider for layer {case.layer}")
        else:
            if provider == "reference" and ei.shape[1] > REFERENCE_MAX_EDGES:
                raise Skip(f"not run above {REFERENCE_MAX_EDGES} edges (minutes per step here)")
            cls = spec[provider]()
        layer = cls(x.shape[1], case.channels, heads=case.heads).to(case.device)
        if inputs["state"]:
            layer.load_state_dict(inputs["state"])
        else:
            inputs["state"].update(layer.state_dict())
        layer(x, ei)  # builds the cached CSR (the fused layers) outside the timed calls
        saved = saved_bytes(layer, x, ei)
        self._saved[(case.label, provider)] = saved
        return (lambda: layer(x, ei)), f"saved for backward {saved / 2**20:.2f} MiB"

    def work(self, case):
        edges = 10556 + 2708 if case.graph == "cora" else case.nodes * case.avg_degree + case.nodes
        gathers = edges * case.heads * case.channels * 4  # the feature rows a fused pass gathers, fp32
        return gathers * (1 if case.mode == "forward" else 3)

    def compare(self, case, provider, out, oracle_out):
        if provider in ("projection", "slimops_attention", "pyg_attention") or not isinstance(out, torch.Tensor) \
                or not isinstance(oracle_out, torch.Tensor):
            return None
        return bool(torch.allclose(out.float(), oracle_out.float(), atol=1e-4, rtol=1e-4))

    def finish_case(self, case, rows):
        by = {r["provider"]: r for r in rows}
        proj = by.get("projection")
        for r in rows:
            saved = self._saved.get((case.label, r["provider"]))
            r["saved_mib"] = None if saved is None else saved / 2**20
            if r["provider"] in ("projection", "slimops_attention", "pyg_attention") or not r["time_ms"]:
                continue
            direct = by.get(r["provider"] + "_attention")
            if direct and direct["time_ms"]:
                r["attention_ms"], r["attention_median_ms"] = direct["time_ms"], direct["median_ms"]
            elif proj and proj["time_ms"]:
                r["attention_ms"] = r["time_ms"] - proj["time_ms"]
                r["attention_median_ms"] = r["median_ms"] - proj["median_ms"]
        pa = by.get("pyg_attention")
        for r in rows:  # an attention row's speed-up is against PyG's attention row, not its whole layer
            if r["provider"] in ("slimops_attention", "pyg_attention"):
                r["speedup_vs_reference"] = None
                r["speedup_vs_pyg"] = pa["time_ms"] / r["time_ms"] if pa and pa["time_ms"] and r["time_ms"] else None
        ours, pyg = by.get("slimops"), by.get("pyg")
        if ours and pyg:
            if ours["attention_ms"] and pyg["attention_ms"] and ours["attention_ms"] > 0:
                ours["attention_speedup_vs_pyg"] = pyg["attention_ms"] / ours["attention_ms"]
            if ours["saved_mib"] and pyg["saved_mib"]:
                ours["saved_ratio_vs_pyg"] = pyg["saved_mib"] / ours["saved_mib"]


SUITE = GATSuite()


# ----------------------------------------------------------------------------- summary of a report


def summary(rows: list, mode: str = "full") -> str:
    """Markdown table of a report's slimops rows against PyG: layer, attention part, saved bytes."""
    by = {}
    for r in rows:
        if r.get("mode") == mode and r.get("status") == "ok":
            key = (r["device"], r["layer"], r["graph"], r["nodes"], r["avg_degree"])
            by.setdefault(key, {})[r["provider"]] = r
    lines = ["| device | layer | graph | N | avg deg | slimops ms | PyG ms | projection ms | layer x PyG | "
             "attention ms slimops / PyG | attention x PyG | saved MiB slimops / PyG | saved x fewer |",
             "|" + "---|" * 13]
    for (device, layer, graph, n, deg), ps in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2] != "powerlaw",
                                                                                  kv[0][3], kv[0][4])):
        o, p, j = ps.get("slimops"), ps.get("pyg"), ps.get("projection")
        if not o or not p:
            continue

        def f(v, fmt="{:.1f}"):
            return "—" if v is None else fmt.format(v)

        lines.append(f"| {device} | {layer} | {graph} | {n} | {deg} | {f(o['time_ms'])} | {f(p['time_ms'])} | "
                     f"{f(j['time_ms'] if j else None)} | {f(o.get('speedup_vs_pyg'), '{:.2f}')} | "
                     f"{f(o.get('attention_ms'))} / {f(p.get('attention_ms'))} | "
                     f"{f(o.get('attention_speedup_vs_pyg'), '{:.2f}')} | "
                     f"{f(o.get('saved_mib'), '{:.2f}')} / {f(p.get('saved_mib'), '{:.1f}')} | "
                     f"{f(o.get('saved_ratio_vs_pyg'), '{:.1f}')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Summary table of a GAT benchmark report (slimops bench gat writes it)")
    ap.add_argument("report", help="bench_gat.json")
    ap.add_argument("--mode", default="full")
    a = ap.parse_args(argv)
    with open(a.report) as f:
        print(summary(json.load(f)["rows"], a.mode))


if __name__ == "__main__":
    sys.exit(main())
