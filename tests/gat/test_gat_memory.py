"""What the fused op keeps for backward (O(N*H) besides its inputs and output), and the benchmark suite's pieces."""

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
    extra = [t for t in saved if t.data_ptr() not in inputs_ptrs]
    assert all(t.shape[0] != n_edges for t in extra), [tuple(t.shape) for t in extra]
    # besides the inputs: the output itself (shared with the caller) and the fp32 log-sum-exp
    assert sorted(tuple(t.shape) for t in extra) == sorted([(n, heads, channels), (n, heads)])
    assert any(t.data_ptr() == out.data_ptr() for t in extra)


def test_bench_suite_smoke():
    rows = []
    provs = {k: v for k, v in bench.providers("cpu").items() if k in ("slimops", "reference", "pyg", "pyg_fused")}
    x = torch.randn(300, 16)
    ei = bench.powerlaw_graph(300, 8, seed=1)
    res = bench.bench_graph("smoke", x, ei, 2, 4, "cpu", 1, provs, rows, log=lambda *_: None)
    bench.add_ratios(rows)
    assert res["slimops"]["peak_mib"] > 0 and res["slimops"]["ms"] > 0
    if "pyg" in res:  # PyG keeps E x H attention and E x H x C messages for backward
        assert res["pyg"]["saved_mib"] > res["slimops"]["saved_mib"]
        assert res["pyg"]["peak_mib"] > res["slimops"]["peak_mib"]
        assert "speedup_vs_pyg" in res["slimops"]
    assert any(r.get("skipped") for r in rows if r["provider"] == "pyg_fused")
