"""The C++ CPU kernels against the reference: graphs, sizes, dtypes, index types, dropout, determinism."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import native_module
from slimops.gat import reference as ref

from .graphs import close, csr, inputs

pytestmark = pytest.mark.skipif(native_module("_C") is None, reason="slimops._C not built")

# (atol, rtol) of the forward output and of the gradients, by feature dtype. Both sides compute in fp32
# from the same inputs; they differ in summation order and (bf16/fp16) in the final rounding.
TOL = {torch.float32: ((2e-6, 2e-5), (1e-5, 1e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (2e-2, 2e-2)),
       torch.float16: ((2e-3, 2e-3), (4e-3, 4e-3))}


def run(backend, h, a_src, a_dst, indptr, indices, p=0.0, seed=0, offset=0, slope=0.2, grad=None):
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, slope, p, seed, offset)
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.dtype) if grad is None else grad
        grads = torch.ops.slimops.gat_backward(g, h, a_src, a_dst, indptr, indices, out, lse, slope, p, seed, offset)
    return out, lse, grads


def compare(args, dtype, p=0.0, seed=0, offset=0, slope=0.2):
    (fa, fr), (ga, gr) = TOL[dtype]
    n_out, n_lse, n_grads = run("native", *args, p=p, seed=seed, offset=offset, slope=slope)
    r_out, r_lse, r_grads = run("reference", *args, p=p, seed=seed, offset=offset, slope=slope)
    close(n_out, r_out, fa, fr, "out")
    close(n_lse, r_lse, 1e-5, 1e-5, "lse")
    for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst"), n_grads, r_grads):
        assert a.dtype == b.dtype == dtype
        close(a, b, ga, gr, name)


@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"])
@pytest.mark.parametrize("heads,channels", [(1, 1), (3, 7), (8, 8), (2, 33)])
def test_native_matches_reference(kind, heads, channels, backend_reset):
    n_src, n_dst = 53, 47
    indptr, indices = csr(kind, n_dst, 6.3, seed=heads * channels, n_src=n_src)
    compare((*inputs(n_src, n_dst, heads, channels, scale=2.0), indptr, indices), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_dtypes(dtype, index_dtype, backend_reset):
    indptr, indices = csr("powerlaw", 61, 5, seed=1, index_dtype=index_dtype)
    compare((*inputs(61, 61, 4, 9, dtype=dtype), indptr, indices), dtype)


@pytest.mark.parametrize("p", [0.1, 0.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_same_mask_as_reference(p, dtype, backend_reset):
    indptr, indices = csr("uniform", 40, 8, seed=2)
    compare((*inputs(40, 40, 3, 5, dtype=dtype), indptr, indices), dtype, p=p, seed=2**40 + 17, offset=3)


def test_dropout_offset_beyond_2_32(backend_reset):
    indptr, indices = csr("uniform", 20, 4, seed=2)
    compare((*inputs(20, 20, 2, 3), indptr, indices), torch.float32, p=0.5, seed=5, offset=2**32 - 7)


def test_negative_slope_and_large_logits(backend_reset):
    indptr, indices = csr("duplicates", 30, 5, seed=4)
    compare((*inputs(30, 30, 2, 4, scale=40.0), indptr, indices), torch.float32, slope=0.01)


def test_deterministic_across_thread_counts(backend_reset):
    indptr, indices = csr("powerlaw", 300, 12, seed=5)
    args = (*inputs(300, 300, 4, 8), indptr, indices)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(run("native", *args, p=0.3, seed=9))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip([results[0][0], results[0][1], *results[0][2]], [other[0], other[1], *other[2]]):
            assert torch.equal(a, b)


def test_deterministic_mode(backend_reset):
    indptr, indices = csr("uniform", 100, 10, seed=6)
    args = (*inputs(100, 100, 2, 16), indptr, indices)
    torch.use_deterministic_algorithms(True)
    try:
        a, b = run("native", *args), run("native", *args)
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(torch.equal(x, y) for x, y in zip([a[0], *a[2]], [b[0], *b[2]]))


def test_autograd_native(backend_reset):
    indptr, indices = csr("selfloops", 45, 4, seed=8)
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(45, 45, 3, 6))
    with slimops.use_backend("native"):
        out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, 0.2)
        out.pow(3).sum().backward()
    leaves = [t.detach().clone().requires_grad_() for t in (h, a_src, a_dst)]
    want_out, _ = ref.forward(*leaves, indptr, indices, 0.2, 0.0, 0, 0)
    want_out.pow(3).sum().backward()
    close(out, want_out, 2e-6, 2e-5, "out")
    for a, b in zip((h.grad, a_src.grad, a_dst.grad), leaves):
        close(a, b.grad, 1e-5, 1e-4)


def test_non_contiguous_inputs(backend_reset):
    indptr, indices = csr("uniform", 20, 4, seed=3)
    h, a_src, a_dst = inputs(20, 20, 6, 4)
    args = (h[:, ::2], a_src[:, ::2], a_dst[:, ::2], indptr, indices)
    compare(args, torch.float32)


def test_no_edges_native(backend_reset):
    h, a_src, a_dst = inputs(5, 4, 2, 3)
    out, lse, grads = run("native", h, a_src, a_dst, torch.zeros(5, dtype=torch.int64),
                          torch.zeros(0, dtype=torch.int64))
    assert (out == 0).all() and torch.isneginf(lse).all() and all((g == 0).all() for g in grads)
