"""The compiled GAT kernels against the reference: the C++ CPU kernels, and with a GPU the CUDA C++ and Triton
kernels (each skipped with its reason where it cannot run). Graphs, sizes, dtypes, index types, the edge score,
dropout, determinism, NaN / Inf scores, a malformed CSR. (Triton on CPU tensors, in its interpreter, is
tests/gat/test_gat_triton.py: small graphs only.)"""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.gat import reference as ref
from slimops.testing import device_backends

from .graphs import close, csr, inputs

# (device, backend): the CPU kernels and the CUDA ones (not the reference: it is the oracle; no nvrtc for GAT)
BACKENDS = [p for p in device_backends() if p.values[1] not in ("reference", "nvrtc")]

# (atol, rtol) of the forward output and of the gradients, by feature dtype. Both sides compute in fp32
# from the same inputs; they differ in summation order, the exp (the CPU kernels' own, within 2 ulp) and
# (bf16/fp16) in the final rounding.
TOL = {torch.float32: ((2e-6, 2e-5), (1e-5, 1e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (2e-2, 2e-2)),
       torch.float16: ((2e-3, 2e-3), (4e-3, 4e-3))}


def to(device, *ts):
    return [None if t is None else t.to(device) for t in ts]


def run(backend, h, a_src, a_dst, indptr, indices, p=0.0, seed=0, offset=0, slope=0.2, grad=None, a_edge=None):
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, slope, p, seed, offset, a_edge)
        g = grad if grad is not None else \
            torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.dtype).to(out.device)
        grads = torch.ops.slimops.gat_backward(g, h, a_src, a_dst, indptr, indices, out, lse, slope, p, seed, offset,
                                               a_edge)
    return out, lse, grads


def compare(device, backend, args, dtype, p=0.0, seed=0, offset=0, slope=0.2, a_edge=None):
    (fa, fr), (ga, gr) = TOL[dtype]
    args = to(device, *args)
    a_edge = None if a_edge is None else a_edge.to(device)
    n_out, n_lse, n_grads = run(backend, *args, p=p, seed=seed, offset=offset, slope=slope, a_edge=a_edge)
    r_out, r_lse, r_grads = run("reference", *args, p=p, seed=seed, offset=offset, slope=slope, a_edge=a_edge)
    close(n_out, r_out, fa, fr, "out")
    close(n_lse, r_lse, 1e-5, 1e-5, "lse")
    for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst", "grad_a_edge"), n_grads, r_grads):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, (name, a.dtype, b.dtype, a.shape, b.shape)
        close(a, b, ga, gr, name)
    return n_out, n_lse, n_grads


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"])
@pytest.mark.parametrize("heads,channels", [(1, 1), (3, 7), (8, 8), (2, 33), (16, 16), (8, 32)])
def test_matches_reference(device, backend, kind, heads, channels, backend_reset):
    n_src, n_dst = 53, 47
    indptr, indices = csr(kind, n_dst, 6.3, seed=heads * channels, n_src=n_src)
    compare(device, backend, (*inputs(n_src, n_dst, heads, channels, scale=2.0), indptr, indices), torch.float32)


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_dtypes(device, backend, dtype, index_dtype, backend_reset):
    indptr, indices = csr("powerlaw", 61, 5, seed=1, index_dtype=index_dtype)
    h, a_src, a_dst = inputs(61, 61, 4, 9, dtype=dtype)
    a_edge = torch.randn(indices.numel(), 4, generator=torch.Generator().manual_seed(4)).to(dtype)
    compare(device, backend, (h, a_src, a_dst, indptr, indices), dtype)
    compare(device, backend, (h, a_src, a_dst, indptr, indices), dtype, p=0.3, seed=5, a_edge=a_edge)


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.6])
@pytest.mark.parametrize("kind", ["powerlaw", "duplicates"])
def test_edge_score(device, backend, p, kind, backend_reset):
    """a_edge [E, H] in the score; grad_a_edge = the score gradient of each edge."""
    n_src, n_dst, heads = 37, 29, 3
    indptr, indices = csr(kind, n_dst, 5, seed=7, n_src=n_src)
    a_edge = 2 * torch.randn(indices.numel(), heads, generator=torch.Generator().manual_seed(5))
    compare(device, backend, (*inputs(n_src, n_dst, heads, 6, scale=2.0), indptr, indices), torch.float32, p=p,
            seed=11, offset=3, a_edge=a_edge)


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("p", [0.1, 0.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_same_mask_as_reference(device, backend, p, dtype, backend_reset):
    indptr, indices = csr("uniform", 40, 8, seed=2)
    compare(device, backend, (*inputs(40, 40, 3, 5, dtype=dtype), indptr, indices), dtype, p=p, seed=2**40 + 17,
            offset=3)


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_dropout_offset_beyond_2_32(device, backend, backend_reset):
    indptr, indices = csr("uniform", 20, 4, seed=2)
    compare(device, backend, (*inputs(20, 20, 2, 3), indptr, indices), torch.float32, p=0.5, seed=5,
            offset=2**32 - 7)


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_negative_slope_and_large_logits(device, backend, backend_reset):
    indptr, indices = csr("duplicates", 30, 5, seed=4)
    compare(device, backend, (*inputs(30, 30, 2, 4, scale=40.0), indptr, indices), torch.float32, slope=0.01)


def _nan_inf_case():
    """Rows whose scores hold a NaN, a +Inf, all -inf, or a -inf beside finite ones; a NaN feature row on
    an edge that dropout drops; a row without edges."""
    n, heads, channels = 12, 2, 5
    indptr, indices = csr("uniform", n, 4, seed=3)
    h, a_src, a_dst = inputs(n, n, heads, channels)
    row = torch.repeat_interleave(torch.arange(n), indptr.diff())
    src0 = lambda i: int(indices[indptr[i]])  # noqa: E731  (the first source of row i)
    a_dst[1, 0] = float("nan")                   # row 1, head 0: every score NaN
    a_src[src0(2), 1] = float("inf")             # row 2: a +Inf score
    a_dst[3, :] = float("-inf")                  # row 3: every score -inf
    a_edge = torch.zeros(indices.numel(), heads)
    a_edge[int(indptr[4]), 0] = float("-inf")    # row 4: one -inf beside finite scores (its alpha is 0)
    a_edge[int(indptr[5]), 1] = float("nan")     # row 5: one NaN edge score
    return h, a_src, a_dst, indptr, indices, a_edge, row


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_nan_inf_scores_as_reference(device, backend, backend_reset):
    """A NaN or +Inf score, or a row whose scores are all -inf, gives NaN for that row and head (out and lse),
    as softmax does; on CUDA such rows used to come out as zeros with lse = -inf."""
    h, a_src, a_dst, indptr, indices, a_edge, _ = _nan_inf_case()
    args = to(device, h, a_src, a_dst, indptr, indices)
    a_edge = a_edge.to(device)
    n_out, n_lse, n_grads = run(backend, *args, a_edge=a_edge)
    r_out, r_lse, r_grads = run("reference", *args, a_edge=a_edge)
    for i, head in ((1, 0), (2, 1), (3, 0), (3, 1), (5, 1)):
        assert torch.isnan(r_out[i, head]).all() and torch.isnan(r_lse[i, head]), (i, head)
    assert torch.isfinite(r_out[4, 0]).all()
    for name, a, b in [("out", n_out, r_out), ("lse", n_lse, r_lse)] + list(zip(("gh", "gs", "gd", "ge"), n_grads,
                                                                               r_grads)):
        assert torch.equal(torch.isnan(a).cpu(), torch.isnan(b).cpu()), f"{name}: NaN positions differ"
        close(torch.nan_to_num(a, 0.0, 0.0, 0.0), torch.nan_to_num(b, 0.0, 0.0, 0.0), 1e-5, 1e-4, name)


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("heads,channels", [(2, 4), (8, 8)])
def test_dropped_edge_row_not_read(device, backend, heads, channels, backend_reset):
    """A NaN in the feature row of an edge that dropout drops reaches neither out nor grad_h, on every backend
    as in the reference (8 x 8: the C++ kernels read 8 heads' rows at once and select the dropped ones out)."""
    n = 10
    indptr, indices = csr("uniform", n, 3, seed=4)
    h, a_src, a_dst = inputs(n, n, heads, channels)
    w = ref.dropout_weights(9, 0, indices.numel(), heads, 0.5)
    k = int((w[:, 0] == 0).nonzero()[0])          # a dropped (edge, head 0)
    h[int(indices[k]), 0] = float("nan")          # its source's row of head 0
    args = to(device, h, a_src, a_dst, indptr, indices)
    n_out, _, n_grads = run(backend, *args, p=0.5, seed=9)
    r_out, _, r_grads = run("reference", *args, p=0.5, seed=9)
    for a, b in ((n_out, r_out), (n_grads[0], r_grads[0])):
        assert torch.equal(torch.isnan(a).cpu(), torch.isnan(b).cpu())
        close(torch.nan_to_num(a, 0.0), torch.nan_to_num(b, 0.0), 1e-5, 1e-4)


def _all_dropped_nan_case():
    """One node, one edge (a self-loop) whose score is NaN and which dropout drops (seed 0, p = 0.3): found by the
    fuzzer. lse is NaN (the softmax is undefined) but out is 0: a dropped edge contributes nothing, and the
    kernels that divide their accumulator by the sum at the end must not turn that 0 into NaN."""
    h, a_src, a_dst = torch.tensor([[[1.5]]]), torch.tensor([[1.5]]), torch.tensor([[float("nan")]])
    return h, a_src, a_dst, torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0], dtype=torch.int32)


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_all_edges_dropped_with_nan_score(device, backend, backend_reset):
    args = to(device, *_all_dropped_nan_case())
    assert ref.dropout_weights(0, 0, 1, 1, 0.3)[0, 0] == 0  # the edge is dropped
    out, lse, _ = run(backend, *args, p=0.3, seed=0)
    assert out.item() == 0 and torch.isnan(lse).all()


@pytest.mark.parametrize("device,backend", [p for p in BACKENDS if p.values[0] == "cuda"] or
                         [pytest.param("cuda", "native", marks=pytest.mark.skip(reason="no CUDA device here"))])
def test_malformed_csr_on_cuda_is_guarded(device, backend, backend_reset):
    """On CUDA nothing validates the CSR (a host sync); forward and backward guard every read, the backward's
    transposed index included, so a malformed CSR gives some output and the context stays usable."""
    h, a_src, a_dst = (t.to(device) for t in inputs(6, 6, 2, 3))
    indptr = torch.tensor([0, 5, 3, 9, 2, 40, 4], device=device)          # decreasing, beyond E
    indices = torch.tensor([0, 7, -3, 1, 2, 99], device=device)           # sources out of range
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0)
        torch.ops.slimops.gat_backward(torch.ones_like(out), h, a_src, a_dst, indptr, indices, out, lse, 0.2, 0.0, 0,
                                       0, torch.zeros(6, 2, device=device))
    torch.cuda.synchronize()
    good_ptr, good_idx = (t.to(device) for t in csr("uniform", 6, 2, seed=1))
    compare(device, backend, (h.cpu(), a_src.cpu(), a_dst.cpu(), good_ptr.cpu(), good_idx.cpu()), torch.float32)


@pytest.mark.parametrize("device,backend", [p for p in BACKENDS if p.values[:2] == ("cuda", "native")] or
                         [pytest.param("cuda", "native", marks=pytest.mark.skip(reason="no CUDA device here"))])
def test_cuda_grid_stride(device, backend, monkeypatch, backend_reset):
    """With the grid capped at 3 CTAs (12 warps) every warp walks many (node, head) pairs: the same results."""
    from slimops.gat import cuda as gat_cuda

    monkeypatch.setattr(gat_cuda, "MAX_BLOCKS", 3)
    indptr, indices = csr("powerlaw", 300, 6, seed=2)
    compare(device, backend, (*inputs(300, 300, 4, 40), indptr, indices), torch.float32, p=0.2, seed=1,
            a_edge=torch.randn(indices.numel(), 4))


def test_deterministic_across_thread_counts(backend_reset):
    if slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    indptr, indices = csr("powerlaw", 300, 12, seed=5)
    args = (*inputs(300, 300, 4, 8), indptr, indices)
    a_edge = torch.randn(indices.numel(), 4)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(run("native", *args, p=0.3, seed=9, a_edge=a_edge))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip([results[0][0], results[0][1], *results[0][2]], [other[0], other[1], *other[2]]):
            assert torch.equal(a, b)


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_deterministic_mode(device, backend, backend_reset):
    indptr, indices = csr("uniform", 100, 10, seed=6)
    args = to(device, *inputs(100, 100, 2, 16), indptr, indices)
    torch.use_deterministic_algorithms(True)
    try:
        a, b = run(backend, *args), run(backend, *args)
    finally:
        torch.use_deterministic_algorithms(False)
    assert all(torch.equal(x, y) for x, y in zip([a[0], *a[2]], [b[0], *b[2]]))


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_autograd(device, backend, backend_reset):
    indptr, indices = to(device, *csr("selfloops", 45, 4, seed=8))
    h, a_src, a_dst = (t.to(device).requires_grad_() for t in inputs(45, 45, 3, 6))
    a_edge = torch.randn(indices.numel(), 3, device=device, requires_grad=True)
    with slimops.use_backend(backend):
        out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, 0.2, a_edge=a_edge)
        out.pow(3).sum().backward()
    leaves = [t.detach().clone().requires_grad_() for t in (h, a_src, a_dst, a_edge)]
    want_out, _ = ref.forward(*leaves[:3], indptr, indices, 0.2, 0.0, 0, 0, leaves[3])
    want_out.pow(3).sum().backward()
    close(out, want_out, 2e-6, 2e-5, "out")
    for a, b in zip((h.grad, a_src.grad, a_dst.grad, a_edge.grad), leaves):
        close(a, b.grad, 1e-5, 1e-4)


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_non_contiguous_inputs(device, backend, backend_reset):
    indptr, indices = csr("uniform", 20, 4, seed=3)
    h, a_src, a_dst = inputs(20, 20, 6, 4)
    a_edge = torch.randn(6, indices.numel()).t()
    compare(device, backend, (h[:, ::2], a_src[:, ::2], a_dst[:, ::2], indptr, indices), torch.float32)
    compare(device, backend, (h[:, ::2], a_src[:, ::2], a_dst[:, ::2], indptr, indices), torch.float32,
            a_edge=a_edge[:, ::2])


@pytest.mark.parametrize("device,backend", BACKENDS)
def test_no_edges(device, backend, backend_reset):
    h, a_src, a_dst = to(device, *inputs(5, 4, 2, 3))
    out, lse, grads = run(backend, h, a_src, a_dst, torch.zeros(5, dtype=torch.int64, device=device),
                          torch.zeros(0, dtype=torch.int64, device=device), a_edge=torch.zeros(0, 2, device=device))
    assert (out == 0).all() and torch.isneginf(lse).all() and all((g == 0).all() for g in grads[:3])
    assert grads[3].shape == (0, 2)


NATIVE_CPU = pytest.mark.skipif(slimops._backend.native_module("_C") is None, reason="slimops._C not built")


@NATIVE_CPU
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,k,heads,channels", [(1, 1, 1, 1), (37, 2, 3, 17), (1100, 2, 4, 32), (600, 1, 2, 40),
                                             (700, 2, 8, 8), (30, 2, 3, 16)])
def test_scores_native_matches_reference(dtype, n, k, heads, channels, backend_reset):
    """gat_scores in C++ (one pass over h; grad_att summed per fixed block of nodes) against the reference."""
    g = torch.Generator().manual_seed(n + k)
    h = torch.randn(n, heads, channels, generator=g).to(dtype)
    att = torch.randn(k, heads, channels, generator=g).to(dtype)
    grad, gh_in = torch.randn(k, n, heads, generator=g).to(dtype), torch.randn(n, heads, channels, generator=g).to(dtype)
    (fa, fr), (ga, gr) = TOL[dtype]
    results = []
    for backend in ("native", "reference"):
        with slimops.use_backend(backend):
            results.append((torch.ops.slimops.gat_scores(h, att),
                            *torch.ops.slimops.gat_scores_backward(grad, h, att, gh_in),
                            torch.ops.slimops.gat_scores_backward(grad, h, att)[0]))
    scale = max(1.0, n ** 0.5)  # grad_att sums n products
    for name, a, b, tol in zip(("scores", "grad_h", "grad_att", "grad_h without grad_h_in"), *results,
                               ((fa, fr), (ga, gr), (ga * scale, gr), (ga, gr))):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        close(a, b, *tol, name)


@NATIVE_CPU
def test_scores_deterministic_across_thread_counts(backend_reset):
    h, att, grad = torch.randn(3000, 4, 32), torch.randn(2, 4, 32), torch.randn(2, 3000, 4)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(torch.ops.slimops.gat_scores_backward(grad, h, att))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for r in results[1:] for a, b in zip(results[0], r))
