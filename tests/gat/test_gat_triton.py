"""The Triton kernels against the reference, in the interpreter on CPU (small graphs) or on a GPU."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import triton_available, triton_interpret

from .graphs import close, csr, inputs
from .test_gat_backends import _all_dropped_nan_case, _nan_inf_case

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.skipif(not triton_available() or (DEVICE == "cpu" and not triton_interpret()),
                                reason="triton missing (or no GPU and TRITON_INTERPRET unset)")

TOL = {torch.float32: ((2e-6, 2e-5), (1e-5, 1e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (2e-2, 2e-2)),
       torch.float16: ((2e-3, 2e-3), (4e-3, 4e-3))}


def run(backend, args, p, seed, offset, g, a_edge=None):
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gat_forward(*args, 0.2, p, seed, offset, a_edge)
        grads = torch.ops.slimops.gat_backward(g, *args, out, lse, 0.2, p, seed, offset, a_edge)
    return out, lse, grads


@pytest.mark.parametrize("kind,n_src,n_dst,heads,channels,dtype,index_dtype,p,edge", [
    ("uniform", 13, 11, 2, 5, torch.float32, torch.int64, 0.0, False),
    ("powerlaw", 17, 17, 1, 3, torch.float32, torch.int32, 0.0, True),   # rows longer than BLOCK_E
    ("isolated", 12, 9, 2, 4, torch.bfloat16, torch.int64, 0.0, False),
    ("duplicates", 10, 10, 3, 2, torch.float16, torch.int32, 0.4, True),
    ("selfloops", 9, 9, 2, 8, torch.float32, torch.int64, 0.5, False),
])
def test_triton_matches_reference(kind, n_src, n_dst, heads, channels, dtype, index_dtype, p, edge, backend_reset):
    indptr, indices = csr(kind, n_dst, 4 if kind != "powerlaw" else 6, seed=1, n_src=n_src, index_dtype=index_dtype)
    h, a_src, a_dst = inputs(n_src, n_dst, heads, channels, dtype=dtype, scale=2.0)
    args = [t.to(DEVICE) for t in (h, a_src, a_dst, indptr, indices)]
    a_edge = torch.randn(indices.numel(), heads).to(dtype).to(DEVICE) if edge else None
    g = torch.randn(n_dst, heads, channels, generator=torch.Generator().manual_seed(2)).to(dtype).to(DEVICE)
    (fa, fr), (ga, gr) = TOL[dtype]
    t_out, t_lse, t_grads = run("triton", args, p, 2**33 + 5, 7, g, a_edge)
    r_out, r_lse, r_grads = run("reference", args, p, 2**33 + 5, 7, g, a_edge)
    close(t_out, r_out, fa, fr, "out")
    close(t_lse, r_lse, 1e-5, 1e-5, "lse")
    for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst", "grad_a_edge"), t_grads, r_grads):
        assert a.shape == b.shape, name
        close(a, b, ga, gr, name)


def test_triton_nan_inf_scores_as_reference(backend_reset):
    """A NaN or +Inf score, or a row whose scores are all -inf, gives NaN (out and lse), not zeros: the
    forward used to test ``s > 0`` for "the row has edges", which is false for a NaN sum."""
    h, a_src, a_dst, indptr, indices, a_edge, _ = _nan_inf_case()
    args = [t.to(DEVICE) for t in (h, a_src, a_dst, indptr, indices)]
    g = torch.ones(h.shape, device=DEVICE)
    t_res = run("triton", args, 0.0, 0, 0, g, a_edge.to(DEVICE))
    r_res = run("reference", args, 0.0, 0, 0, g, a_edge.to(DEVICE))
    for name, a, b in zip(("out", "lse", "gh", "gs", "gd", "ge"), (t_res[0], t_res[1], *t_res[2]),
                          (r_res[0], r_res[1], *r_res[2])):
        assert torch.equal(torch.isnan(a).cpu(), torch.isnan(b).cpu()), f"{name}: NaN positions differ"
        close(torch.nan_to_num(a, 0.0, 0.0, 0.0), torch.nan_to_num(b, 0.0, 0.0, 0.0), 1e-5, 1e-4, name)


def test_triton_all_edges_dropped_with_nan_score(backend_reset):
    """out = 0 (not NaN) when dropout keeps no edge of a row whose score sum is NaN (found by the fuzzer)."""
    args = [t.to(DEVICE) for t in _all_dropped_nan_case()]
    out, lse, _ = run("triton", args, 0.3, 0, 0, torch.ones(1, 1, 1, device=DEVICE))
    assert out.item() == 0 and torch.isnan(lse).all()
