"""What the fused op keeps for backward (O(N*H) besides its inputs and output), and the benchmark suite."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.gat import bench

from .graphs import csr, inputs


@pytest.mark.parametrize("backend", ["reference", pytest.param("native", marks=pytest.mark.skipif(
    slimops._backend.native_module("_C") is None, reason="slimops._C not built"))])
def test_saves_no_edge_sized_tensor(backend, backend_reset):
    n, heads, channels = 50, 4, 8
    indptr, indices = csr("powerlaw", n, 12, seed=3)
    n_edges = indices.numel()
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(n, n, heads, channels))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t), \
            slimops.use_backend(backend):
        out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, 0.2, dropout=0.5)
    inputs_ptrs = {t.data_ptr() for t in (h, a_src, a_dst, indptr, indices)}
    extra = [t for t in saved if t is not None and t.data_ptr() not in inputs_ptrs]
    assert all(t.shape[0] != n_edges for t in extra), [tuple(t.shape) for t in extra]
    # besides the inputs: the output itself (shared with the caller) and the fp32 log-sum-exp
    assert sorted(tuple(t.shape) for t in extra) == sorted([(n, heads, channels), (n, heads)])
    assert any(t.data_ptr() == out.data_ptr() for t in extra)


def test_layer_with_edge_features_saves_edge_scores_only():
    """FusedGATConv with edge_dim keeps an [E, H] edge score (and edge_attr, its input), never E x H x C."""
    from slimops.nn import FusedGATConv

    n, heads, channels = 60, 4, 8
    ei = bench.powerlaw_graph(n, 10, seed=2)
    conv = FusedGATConv(16, channels, heads=heads, edge_dim=3)
    x, ea = torch.randn(n, 16, requires_grad=True), torch.randn(ei.shape[1], 3, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        conv(x, ei, ea)
    assert not [tuple(t.shape) for t in saved if t is not None and t.dim() >= 2 and t.shape[0] >= ei.shape[1]
                and t.numel() >= ei.shape[1] * heads * channels]


def test_bench_suite_smoke():
    """The suite on a tiny graph (quick policy): every provider measured (or skipped with its reason), the attention
    part and the saved bytes derived, the summary table made."""
    import argparse

    from slimops.benchmarks.runner import run_suite

    args = argparse.Namespace(quick=True, configs="300:8", sweep=False, layers=["gat", "gatv2"], providers=None,
                              cora_root="/nonexistent", compile_budget=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: on a loaded machine two threads mostly wait for each other
    try:
        _, rows = run_suite(bench.SUITE, args, ["cpu"])
    finally:
        torch.set_num_threads(threads)
    by = {(r["provider"], r["mode"]): r for r in rows if r["layer"] == "gat"}
    ours, proj = by[("slimops", "full")], by[("projection", "full")]
    assert ours["status"] == "ok" and proj["status"] == "ok" and ours["saved_mib"] > 0
    direct = by[("slimops_attention", "full")]  # the attention timed directly: the layer with lin = identity
    assert direct["status"] == "ok" and ours["attention_ms"] == direct["time_ms"]
    ref = by[("reference", "full")]
    if ref["status"] == "ok":  # no direct row for the reference layer: the layer minus the projection
        assert ref["attention_ms"] == pytest.approx(ref["time_ms"] - proj["time_ms"])
    if by[("pyg_attention", "full")]["status"] == "ok":
        assert by[("pyg_attention", "full")]["speedup_vs_pyg"] == pytest.approx(1.0)
        want = by[("pyg", "full")]["attention_ms"] / direct["time_ms"]
        assert ours["attention_speedup_vs_pyg"] == pytest.approx(want)
    assert all(r["status"] == "skipped" for r in rows if r["layer"] == "gatv2" and r["provider"].endswith("_attention"))
    assert by[("pyg_fused", "full")]["status"] == "skipped"
    if by[("pyg", "full")]["status"] == "ok":  # PyG keeps E x H attention and E x H x C messages for backward
        assert by[("pyg", "full")]["saved_mib"] > ours["saved_mib"]
        assert ours["saved_ratio_vs_pyg"] > 1 and ours["attention_speedup_vs_pyg"] is not None
        assert "| cpu | gat | powerlaw | 300 | 8 |" in bench.summary(rows)
    v2 = {r["provider"]: r for r in rows if r["layer"] == "gatv2" and r["mode"] == "full"}
    assert v2["projection"]["status"] == "ok"  # the GATv2 provider plugs into the same cases
    assert v2["slimops"]["status"] in ("ok", "skipped")
