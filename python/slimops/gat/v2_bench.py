"""GATv2 benchmark suite (``slimops bench gatv2``): one GATv2 layer, FusedGATv2Conv vs PyG GATv2Conv vs the reference.

Cases: power-law graphs (``slimops.gat.bench.powerlaw_graph``, the GAT suite's), 256 input features,
4 heads x 32 channels, and Cora (8 x 8); ``--sweep`` is the grid N in {5k, 20k, 50k} x average degree in
{4, 16, 32, 64}. Two parts of each layer, timed the same way for every provider:

* ``layer``: the whole layer on x [N, 256] (projections lin_l and lin_r, attention, bias);
* ``attention``: the same layer with lin_l and lin_r replaced by the identity, on precomputed
  projections (x_l, x_r) [N, H*C]: the layer minus the projection both layers share.

Providers: ``slimops`` (FusedGATv2Conv, backend auto: C++ on CPU, Triton on CUDA), ``slimops-native`` (CUDA
only: the CUDA C++ kernels), ``reference`` (FusedGATv2Conv whose
attention is autograd through the pure-PyTorch reference, E x H x C tensors kept; not run above 400k
edges), ``pyg`` (PyG GATv2Conv). On the CPU the unfused providers are skipped, and say so, where they would
need more than half the memory the (shared) machine has available. Modes ``forward`` and ``full`` (forward + backward). Extra columns:
``saved_mib``, the bytes autograd keeps for backward (unique storages, inputs and parameters excluded;
the cached CSR counts), and ``saved_vs_pyg`` (PyG's saved bytes / this provider's).
"""

from __future__ import annotations

import os

import torch
from torch import nn

import slimops

from ..benchmarks.runner import Case, Skip, Suite, quiet_peer
from .bench import cora_graph, powerlaw_graph

SWEEP = [(n, d) for n in (5000, 20000, 50000) for d in (4, 16, 32, 64)]
DEFAULT = [(5000, 4), (5000, 16), (20000, 32)]
QUICK = [(2000, 4), (2000, 16)]
REFERENCE_MAX_EDGES = 400_000
UNFUSED_BYTES = 5  # peak of an unfused layer (PyG, the reference) in E x H x C fp32 tensors: PyG keeps ~3 for backward


def mem_available() -> "int | None":
    """MemAvailable of /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reference_conv():
    """FusedGATv2Conv whose attention is autograd through the pure-PyTorch reference forward: the unfused
    eager baseline (E x H x C kept for backward), independent of the selected backend."""
    from ..nn.gatv2_conv import FusedGATv2Conv
    from . import v2_reference

    class ReferenceGATv2Conv(FusedGATv2Conv):
        def attention(self, xl, xr, att, indptr, indices, edge_attr, w_edge, dropout, seed):
            from .v2_api import _edge_args

            edge_attr, w_edge = _edge_args(xl, edge_attr, w_edge, indices.shape[0])
            return v2_reference.forward(xl, xr, att, edge_attr, w_edge, indptr, indices, self.negative_slope, 0.0,
                                        0, 0)

    return ReferenceGATv2Conv


def saved_mib(layer, x, edge_index) -> float:
    """MiB of the unique storages autograd saves for backward in ``layer(x, edge_index)``, the inputs (``x`` or
    both of a pair) and parameters excluded (``slimops.gat.bench.saved_bytes`` for pairs of inputs)."""
    exclude = {t.untyped_storage().data_ptr() for t in [*(x if isinstance(x, tuple) else [x]), *layer.parameters()]}
    seen = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in exclude:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x, edge_index)
    del out
    return sum(seen.values()) / 2**20


def _pairs(spec: str) -> list:
    try:
        return [tuple(int(v) for v in c.split(":")) for c in spec.split(",")]
    except ValueError:
        raise SystemExit(f"--configs must be N:deg,N:deg,..., got {spec!r}") from None


class GATv2Suite(Suite):
    """One GATv2 layer (FusedGATv2Conv vs PyG GATv2Conv vs the reference): the layer and its attention part,
    forward and forward + backward. ``work``: the bytes of the edge gathers a fused pass needs (E x H x C
    features: once forward, three more times backward)."""

    name = "gatv2"
    title = "GATv2 layer (fused attention): forward and forward+backward"
    providers = ("slimops", "slimops-native", "reference", "pyg")
    oracle = "reference"
    speedups = {"speedup_vs_pyg": "pyg", "speedup_vs_reference": "reference"}
    case_columns = ("graph", "nodes", "avg_degree", "heads", "channels", "part")
    modes = ("forward", "full")
    extra_columns = ("saved_mib", "saved_vs_pyg")
    table_columns = [("time_ms", "ms"), ("median_ms", "median"), ("saved_mib", "saved MiB"),
                     ("saved_vs_pyg", "pyg saved / saved")]

    def __init__(self):
        self._saved = {}

    def providers_for(self, device):
        """On CUDA ``slimops`` runs what auto picks (Triton) and ``slimops-native`` the CUDA C++ kernels; on the
        CPU auto is the C++ kernels, so ``slimops-native`` would repeat it."""
        return [p for p in self.providers if p != "slimops-native" or device == "cuda"]

    def add_arguments(self, p):
        p.add_argument("--configs", default=None, help="N:deg,... power-law graphs (default 5000:4,5000:16,20000:32)")
        p.add_argument("--sweep", action="store_true", help="the grid N in {5k, 20k, 50k} x degree in {4, 16, 32, 64}")
        p.add_argument("--parts", default="layer,attention", help="layer and/or attention (comma-separated)")
        p.add_argument("--modes", default="full", help="forward and/or full (comma-separated; default full, the "
                                                       "training step: forward alone adds 80 s to `slimops bench`)")
        p.add_argument("--cora-root", default="/work/shared/data/planetoid")

    def check_arguments(self, args):
        for opt, allowed in (("parts", ("layer", "attention")), ("modes", self.modes)):
            bad = [v for v in getattr(args, opt).split(",") if v not in allowed]
            if bad:
                raise SystemExit(f"--{opt}: unknown {bad}; expected from {allowed}")
        if args.configs:
            _pairs(args.configs)

    def cases(self, args, device):
        if getattr(args, "configs", None):
            configs = _pairs(args.configs)
        elif getattr(args, "sweep", False):
            configs = SWEEP
        else:
            configs = QUICK if getattr(args, "quick", False) else DEFAULT
        parts = getattr(args, "parts", "layer,attention").split(",")
        root = getattr(args, "cora_root", "/work/shared/data/planetoid")
        cora = os.path.isdir(root) and not getattr(args, "quick", False) and not getattr(args, "configs", None)
        out = []
        for mode in getattr(args, "modes", "full").split(","):
            for part in parts:
                for n, deg in configs:
                    out.append(Case(device, dict(graph="powerlaw", nodes=n, avg_degree=deg, heads=4, channels=32,
                                                 part=part), mode))
                if cora:
                    out.append(Case(device, dict(graph="cora", nodes=2708, avg_degree=3.9, heads=8, channels=8,
                                                 part=part, root=root), mode))
        return out

    def inputs(self, case):
        if case.graph == "cora":
            x, ei = cora_graph(case.params["root"])
        else:
            ei = powerlaw_graph(case.nodes, case.avg_degree, seed=case.nodes + case.avg_degree)
            x = torch.randn(case.nodes, 256, generator=torch.Generator().manual_seed(1))
        grad = case.mode != "forward"
        inp = dict(x=x.to(case.device).requires_grad_(grad), edge_index=ei.to(case.device), state={})
        if case.part == "attention":  # precomputed projections, the same for every provider
            g = torch.Generator().manual_seed(2)
            hc = case.heads * case.channels
            inp["x"] = tuple((torch.randn(x.shape[0], hc, generator=g) / 4).to(case.device).requires_grad_(grad)
                             for _ in range(2))
        return inp

    def _layer_class(self, provider, device):
        from ..nn.gatv2_conv import FusedGATv2Conv

        if provider in ("slimops", "slimops-native"):
            return FusedGATv2Conv
        if provider == "reference":
            return reference_conv()
        try:
            with quiet_peer("torch_geometric"):
                from torch_geometric.nn import GATv2Conv
        except ImportError:
            raise Skip("PyG not installed") from None
        return GATv2Conv

    def build(self, case, provider, inputs, budget):
        x, ei = inputs["x"], inputs["edge_index"]
        n_edges = ei.shape[1] + (x[0] if isinstance(x, tuple) else x).shape[0]
        if provider == "reference" and n_edges > REFERENCE_MAX_EDGES:
            raise Skip(f"not run above {REFERENCE_MAX_EDGES} edges (E x H x C tensors, seconds per call)")
        if provider in ("pyg", "reference") and case.device == "cpu":
            need, avail = UNFUSED_BYTES * n_edges * case.heads * case.channels * 4, mem_available()
            if avail is not None and need > avail / 2:
                raise Skip(f"needs about {need / 2**30:.1f} GiB ({UNFUSED_BYTES} E x H x C fp32 tensors), over half "
                           f"of the {avail / 2**30:.1f} GiB this shared machine has available")
        cls = self._layer_class(provider, case.device)
        torch.manual_seed(0)
        layer = cls(256 if case.graph != "cora" else 1433, case.channels, heads=case.heads).to(case.device)
        if inputs["state"]:
            layer.load_state_dict(inputs["state"])
        else:
            inputs["state"].update(layer.state_dict())
        if case.part == "attention":
            layer.lin_l = layer.lin_r = nn.Identity()
        backend = "native" if provider == "slimops-native" else "auto"

        def call():
            with slimops.use_backend(backend):  # backward re-enters it (the op records it)
                return layer(x, ei)

        call()  # builds the cached CSR (FusedGATv2Conv) outside the timed calls
        with slimops.use_backend(backend):
            saved = self._saved[(case.label, provider)] = saved_mib(layer, x, ei)
        return call, f"saved for backward {saved:.2f} MiB"

    def work(self, case):
        edges = (10556 if case.graph == "cora" else case.nodes * case.avg_degree) + case.nodes
        return edges * case.heads * case.channels * 4 * (1 if case.mode == "forward" else 4)

    def compare(self, case, provider, out, oracle_out):
        if not isinstance(out, torch.Tensor) or not isinstance(oracle_out, torch.Tensor):
            return None
        return bool(torch.allclose(out.float(), oracle_out.float(), atol=1e-4, rtol=1e-4))

    def finish_case(self, case, rows):
        saved = {r["provider"]: self._saved.get((case.label, r["provider"])) for r in rows}
        for r in rows:
            s = saved.get(r["provider"])
            if s is not None and r["status"] == "ok":
                r["saved_mib"] = s
                if saved.get("pyg"):
                    r["saved_vs_pyg"] = saved["pyg"] / max(s, 1e-9)

    def plot(self, path, rows, meta):
        """Per N and part: speed-up over PyG (forward + backward) and PyG's saved bytes / ours, against degree."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ours = [r for r in rows if r["provider"] == "slimops" and r["graph"] == "powerlaw" and r["mode"] == "full"
                and r.get("speedup_vs_pyg")]
        if not ours:
            return super().plot(path, rows, meta)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for (n, part) in sorted({(r["nodes"], r["part"]) for r in ours}):
            sel = sorted((r for r in ours if r["nodes"] == n and r["part"] == part), key=lambda r: r["avg_degree"])
            deg = [r["avg_degree"] for r in sel]
            style = "o-" if part == "layer" else "s--"
            axes[0].plot(deg, [r["speedup_vs_pyg"] for r in sel], style, label=f"N={n} {part}")
            axes[1].plot(deg, [r["saved_vs_pyg"] for r in sel], style, label=f"N={n} {part}")
        axes[0].set(xscale="log", xlabel="average degree", ylabel="PyG time / slimops time",
                    title="GATv2 forward + backward: speed-up over PyG")
        axes[1].set(xscale="log", yscale="log", xlabel="average degree", ylabel="PyG saved / slimops saved",
                    title="bytes saved for backward")
        for ax, target in zip(axes, (4.0, 20.0)):
            ax.axhline(target, color="gray", lw=0.7, ls=":")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


SUITE = GATv2Suite()
