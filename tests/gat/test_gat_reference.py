"""The GAT reference: against autograd through its own forward and a naive per-row loop, partials and merge,
dropout, bad input, opcheck."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.gat import reference as ref

from .graphs import close, csr, inputs

KINDS = ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"]


def naive_forward(h, a_src, a_dst, indptr, indices, slope, w=None):
    """Row by row with torch.softmax: an oracle independent of the reference's scatter code."""
    n_dst, heads = a_dst.shape
    out = torch.zeros(n_dst, heads, h.shape[2], dtype=torch.float64)
    for i in range(n_dst):
        s, e = int(indptr[i]), int(indptr[i + 1])
        if s == e:
            continue
        j = indices[s:e].long()
        logits = torch.nn.functional.leaky_relu(a_src[j].double() + a_dst[i].double(), slope)
        alpha = torch.softmax(logits, 0)
        if w is not None:
            alpha = alpha * w[s:e].double()
        out[i] = (alpha[:, :, None] * h[j].double()).sum(0)
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heads,channels", [(1, 1), (3, 5), (4, 16)])
def test_forward_matches_naive(kind, heads, channels):
    n = 37
    indptr, indices = csr(kind, n, 4.5, seed=heads)
    h, a_src, a_dst = inputs(n, n, heads, channels, scale=3.0)
    out, lse = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0)
    close(out, naive_forward(h, a_src, a_dst, indptr, indices, 0.2), 1e-5, 1e-5, "out")
    empty = indptr[1:] == indptr[:-1]
    assert torch.isneginf(lse[empty]).all() and torch.isfinite(lse[~empty]).all()
    assert (out[empty] == 0).all()


def _autograd_grads(h, a_src, a_dst, indptr, indices, slope, p, seed, offset, grad_out, a_edge=None):
    leaves = [t.detach().clone().requires_grad_() for t in (h, a_src, a_dst) + ((a_edge,) if a_edge is not None else ())]
    out, _ = ref.forward(*leaves[:3], indptr, indices, slope, p, seed, offset, *leaves[3:])
    return torch.autograd.grad(out, leaves, grad_out)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("edge", [False, True])
def test_backward_matches_autograd(kind, p, edge):
    n_src, n_dst, heads, channels = 29, 23, 3, 7
    indptr, indices = csr(kind, n_dst, 5.0, seed=3, n_src=n_src)
    h, a_src, a_dst = inputs(n_src, n_dst, heads, channels, scale=2.0)
    a_edge = torch.randn(indices.numel(), heads) if edge else None
    out, lse = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, p, 11, 5, a_edge)
    g = torch.randn_like(out)
    got = ref.backward(g, h, a_src, a_dst, indptr, indices, out, lse, 0.2, p, 11, 5, a_edge)
    want = _autograd_grads(h, a_src, a_dst, indptr, indices, 0.2, p, 11, 5, g, a_edge)
    assert got[3].shape == ((indices.numel(), heads) if edge else (0, heads))
    for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst", "grad_a_edge"), got, want):
        close(a, b, 1e-5, 1e-4, name)


def test_edge_score_forward_matches_naive():
    """The edge score adds to each edge's logit before the leaky ReLU: naive_forward with a_src + a_edge."""
    n = 19
    indptr, indices = csr("duplicates", n, 4, seed=5)
    h, a_src, a_dst = inputs(n, n, 2, 3)
    a_edge = torch.randn(indices.numel(), 2)
    out, _ = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0, a_edge)
    want = torch.zeros(n, 2, 3, dtype=torch.float64)
    for i in range(n):
        s, e = int(indptr[i]), int(indptr[i + 1])
        if s < e:
            j = indices[s:e].long()
            z = a_src[j].double() + a_dst[i].double() + a_edge[s:e].double()
            alpha = torch.softmax(torch.nn.functional.leaky_relu(z, 0.2), 0)
            want[i] = (alpha[:, :, None] * h[j].double()).sum(0)
    close(out, want, 1e-5, 1e-5, "out")


def test_attention_weights_from_lse():
    """slimops.gat.attention_weights: the row softmax of the scores (from the saved lse) times the dropout
    factor, in CSR order; its gradient is softmax's (autograd through a recomputed softmax)."""
    n, heads = 23, 2
    indptr, indices = csr("powerlaw", n, 4, seed=6)
    h, a_src, a_dst = inputs(n, n, heads, 3)
    a_edge = torch.randn(indices.numel(), heads)
    _, lse = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.5, 3, 0, a_edge)
    leaves = [t.clone().requires_grad_() for t in (a_src, a_dst, a_edge)]
    alpha = slimops.gat.attention_weights(*leaves[:2], indptr, indices, lse, 0.2, leaves[2], 0.5, 3)
    row = torch.repeat_interleave(torch.arange(n), indptr.diff())
    leaves2 = [t.clone().requires_grad_() for t in (a_src, a_dst, a_edge)]
    e = torch.nn.functional.leaky_relu(leaves2[0][indices] + leaves2[1][row] + leaves2[2], 0.2)
    m = torch.full((n, heads), -float("inf")).scatter_reduce(0, row[:, None].expand_as(e), e.detach(), "amax")
    p = torch.exp(e - m[row])
    want = p / torch.zeros(n, heads).index_add(0, row, p)[row] * ref.dropout_weights(3, 0, indices.numel(), heads, 0.5)
    close(alpha, want, 1e-6, 1e-5, "alpha")
    g = torch.randn_like(alpha)
    for a, b in zip(torch.autograd.grad(alpha, leaves, g), torch.autograd.grad(want, leaves2, g)):
        close(a, b, 1e-6, 1e-5, "grad")


def test_transposed_index_guards_a_malformed_csr():
    """The backward's transposed index (built with torch ops on CUDA, where nothing validated the CSR) reads
    every value guardedly: out-of-range sources and a decreasing or overlong indptr give in-range entries
    (no index error, which on CUDA is a device-side assert that kills the context)."""
    indptr = torch.tensor([0, 5, 3, 9, 2, 40])
    indices = torch.tensor([0, 7, -3, 1, 2, 99, 4])
    colptr, csc_edge, csc_row = ref.transposed_index(indptr, indices, 5)
    assert colptr.shape == (6,) and colptr[-1] <= indices.numel() and (colptr.diff() >= 0).all()
    assert ((csc_edge >= 0) & (csc_edge < indices.numel())).all()
    assert ((csc_row >= 0) & (csc_row <= 5)).all()
    # on a well-formed CSR it is the exact transpose
    indptr, indices = csr("powerlaw", 30, 4, seed=2, n_src=35, index_dtype=torch.int32)
    colptr, csc_edge, csc_row = ref.transposed_index(indptr, indices, 35)
    row = torch.repeat_interleave(torch.arange(30), indptr.diff().long())
    order = torch.argsort(indices.long(), stable=True)
    assert torch.equal(csc_edge.long(), order) and torch.equal(csc_row, row[order])
    assert torch.equal(colptr[1:] - colptr[:-1], torch.bincount(indices.long(), minlength=35))


def test_destination_rows_never_in_int32():
    """Destination ids above 2^31 must not wrap: the transposed index keeps rows in int64 whatever the index
    dtype, and the index dtype depends only on what the indices hold (E and N_src)."""
    indptr, indices = csr("uniform", 10, 3, seed=1, index_dtype=torch.int32)
    assert ref.transposed_index(indptr, indices, 10)[2].dtype == torch.int64
    assert ref.transposed_index(indptr, indices, 10)[1].dtype == torch.int32
    from slimops.gat.api import index_dtype_for

    assert index_dtype_for(2**31 - 2, 5) == torch.int32
    assert index_dtype_for(2**31 - 1, 5) == torch.int64
    assert index_dtype_for(5, 2**31) == torch.int64


def test_autograd_through_op():
    n = 31
    indptr, indices = csr("powerlaw", n, 6, seed=2)
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(n, n, 2, 6))
    with slimops.use_backend("reference"):
        out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, 0.2)
        out.square().sum().backward()
    want = _autograd_grads(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0, 2 * out.detach())
    for a, b in zip((h.grad, a_src.grad, a_dst.grad), want):
        close(a, b, 1e-5, 1e-4)


def _blocks(h, a_src, indptr, indices, bounds):
    """Split the source nodes at ``bounds``: per block the CSR of its edges, indices local."""
    row = torch.repeat_interleave(torch.arange(indptr.numel() - 1), (indptr[1:] - indptr[:-1]).long())
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        keep = (indices >= lo) & (indices < hi)
        counts = torch.bincount(row[keep], minlength=indptr.numel() - 1)
        ip = torch.zeros(indptr.numel(), dtype=indptr.dtype)
        ip[1:] = counts.cumsum(0)
        out.append((h[lo:hi].contiguous(), a_src[lo:hi].contiguous(), ip, (indices[keep] - lo).to(indices.dtype)))
    return out


@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated"])
def test_partials_merge_equal_full(kind):
    n_src, n_dst, heads, channels = 41, 33, 2, 5
    indptr, indices = csr(kind, n_dst, 4, seed=7, n_src=n_src)
    h, a_src, a_dst = inputs(n_src, n_dst, heads, channels, scale=2.0)
    full, full_lse = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0)
    blocks = _blocks(h, a_src, indptr, indices, [0, 10, 11, 30, n_src])
    parts = [slimops.gat.partial_forward(hb, sb, a_dst, ip, ix) for hb, sb, ip, ix in blocks]
    out, lse = slimops.gat.merge([p[0] for p in parts], [p[1] for p in parts])
    close(out, full, 1e-5, 1e-5, "merged out")
    close(lse, full_lse, 1e-5, 1e-5, "merged lse")
    # partial backward with the merged statistics gives each block's exact gradients
    g = torch.randn_like(full)
    gh, gs, gd, _ = ref.backward(g, h, a_src, a_dst, indptr, indices, full, full_lse, 0.2, 0.0, 0, 0)
    grads = [slimops.gat.partial_backward(g, out, lse, hb, sb, a_dst, ip, ix) for hb, sb, ip, ix in blocks]
    close(torch.cat([x[0] for x in grads]), gh, 1e-5, 1e-4, "grad_h")
    close(torch.cat([x[1] for x in grads]), gs, 1e-5, 1e-4, "grad_a_src")
    close(sum(x[2] for x in grads), gd, 1e-5, 1e-4, "grad_a_dst")


def test_sequential_aggregate_autograd():
    n_src, n_dst = 40, 30
    indptr, indices = csr("uniform", n_dst, 5, seed=1, n_src=n_src)
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(n_src, n_dst, 3, 4))
    blocks = _blocks(h, a_src, indptr, indices, [0, 13, 27, n_src])
    out = slimops.gat.sequential_aggregate(blocks, a_dst, 0.2)
    out.sum().backward()
    want_out = ref.forward(h.detach(), a_src.detach(), a_dst.detach(), indptr, indices, 0.2, 0.0, 0, 0)[0]
    close(out, want_out, 1e-5, 1e-5)
    want = _autograd_grads(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0, torch.ones_like(want_out))
    for a, b in zip((h.grad, a_src.grad, a_dst.grad), want):
        close(a, b, 1e-5, 1e-4)


def test_merge_all_empty_rows():
    outs = torch.zeros(3, 4, 2, 5)
    lses = torch.full((3, 4, 2), float("-inf"))
    lses[1, 0] = 0.5
    outs[1, 0] = 1.0
    out, lse = slimops.gat.merge(list(outs), list(lses))
    assert torch.isneginf(lse[1:]).all() and (out[1:] == 0).all()
    close(out[0], outs[1, 0], 0, 0)


def test_dropout_hash():
    w = ref.dropout_weights(123, 0, 20000, 4, 0.3)
    keep = (w > 0).float().mean().item()
    assert abs(keep - 0.7) < 0.01
    assert torch.equal(w, ref.dropout_weights(123, 0, 20000, 4, 0.3))
    assert not torch.equal(w, ref.dropout_weights(124, 0, 20000, 4, 0.3))
    # the counter is offset + edge: a shifted call sees the same stream
    assert torch.equal(ref.dropout_weights(123, 5, 100, 4, 0.3), w[5:105])
    # independent heads
    assert (w[:, 0] > 0).float().sub((w[:, 1] > 0).float()).abs().mean() > 0.3
    # counters beyond 2^32 use the high word
    assert not torch.equal(ref.dropout_hash(1, 2**32, 50, 2), ref.dropout_hash(1, 0, 50, 2))


def test_dropout_forward_matches_naive():
    n = 25
    indptr, indices = csr("uniform", n, 5, seed=4)
    h, a_src, a_dst = inputs(n, n, 2, 3)
    out, _ = ref.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.5, 99, 7)
    w = ref.dropout_weights(99, 7, indices.numel(), 2, 0.5)
    close(out, naive_forward(h, a_src, a_dst, indptr, indices, 0.2, w), 1e-5, 1e-5)


def test_seed_drawn_from_torch_generator():
    n = 20
    indptr, indices = csr("uniform", n, 5, seed=4)
    h, a_src, a_dst = inputs(n, n, 2, 3)
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        outs.append(slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, dropout=0.5))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, dropout=0.5))
    assert torch.equal(slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, dropout=0.5, training=False),
                       slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices))


def _good():
    indptr, indices = csr("uniform", 6, 2)
    return (*inputs(6, 6, 2, 3), indptr, indices)


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda a: (a[0][:, :1], *a[1:]), ValueError, "a_src must have shape"),
    (lambda a: (a[0], a[1][:5], *a[2:]), ValueError, "a_src must have shape"),
    (lambda a: (a[0], a[1], a[2][:, :1], *a[3:]), ValueError, "a_dst must have shape"),
    (lambda a: (a[0].double(), *a[1:]), TypeError, "h must be float32"),
    (lambda a: (a[0], a[1].half(), *a[2:]), TypeError, "a_src must have h's dtype"),
    (lambda a: (a[0][0], *a[1:]), ValueError, "h must be 3-d"),
    (lambda a: (*a[:3], a[3][:-1], a[4]), ValueError, "indptr must be 1-d"),
    (lambda a: (*a[:3], a[3].int(), a[4]), TypeError, "both be int32 or both int64"),
    (lambda a: (*a[:3], a[3].float(), a[4]), TypeError, "both be int32 or both int64"),
    (lambda a: (*a[:3], a[3], a[4].clone().fill_(6)), ValueError, "indices must lie in"),
    (lambda a: (*a[:3], a[3], a[4].clone().fill_(-1)), ValueError, "indices must lie in"),
    (lambda a: (*a[:3], a[3].flip(0), a[4]), ValueError, "malformed CSR"),
    (lambda a: (*a[:3], torch.cat([a[3][:3], a[3][2:3] - 1, a[3][4:]]), a[4]), ValueError, "malformed CSR"),
    (lambda a: (*a[:3], a[3], a[4][:-1]), ValueError, "indptr\\[-1\\] must equal"),
    (lambda a: (*a[:3], a[3] + 1, a[4]), ValueError, "indptr\\[0\\] must be 0"),
    (lambda a: (*a, torch.zeros(a[4].numel() + 1, 2)), ValueError, "a_edge must have shape"),
    (lambda a: (*a, torch.zeros(a[4].numel(), 3)), ValueError, "a_edge must have shape"),
    (lambda a: (*a, torch.zeros(a[4].numel(), 2, dtype=torch.float64)), TypeError, "a_edge must have h's dtype"),
])
@pytest.mark.parametrize("backend", ["reference", "native"])
def test_bad_input(mutate, exc, match, backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    args = mutate(_good())
    edge = args[5:]
    with slimops.use_backend(backend), pytest.raises(exc, match=match):
        torch.ops.slimops.gat_forward(*args[:5], 0.2, 0.0, 0, 0, *edge)


def test_bad_dropout_and_device():
    args = _good()
    with pytest.raises(ValueError, match="dropout must be in"):
        torch.ops.slimops.gat_forward(*args, 0.2, 1.0, 0, 0)
    meta = (args[0], args[1], args[2].to("meta"), args[3], args[4])
    with pytest.raises(ValueError, match="a_dst must be on h's device"):
        torch.ops.slimops.gat_forward(*meta, 0.2, 0.0, 0, 0)


def test_edge_index_checks():
    with pytest.raises(ValueError, match="outside the graph"):
        slimops.gat.csr_from_edge_index(torch.tensor([[0, 5], [1, 2]]), 5)
    with pytest.raises(ValueError, match="shape \\[2, E\\]"):
        slimops.gat.csr_from_edge_index(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(TypeError, match="int64 or int32"):
        slimops.gat.csr_from_edge_index(torch.zeros(2, 4), 5)


def test_empty_graph_and_no_edges():
    h, a_src, a_dst = inputs(5, 4, 2, 3)
    indptr = torch.zeros(5, dtype=torch.int64)
    indices = torch.zeros(0, dtype=torch.int64)
    out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0)
    assert (out == 0).all() and torch.isneginf(lse).all()
    h0, s0, d0 = inputs(0, 0, 2, 3)
    out, lse = torch.ops.slimops.gat_forward(h0, s0, d0, torch.zeros(1, dtype=torch.int64), indices, 0.2, 0.0, 0, 0)
    assert out.shape == (0, 2, 3)


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_opcheck(backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    indptr, indices = csr("isolated", 12, 3, seed=9)
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(12, 12, 2, 4))
    with slimops.use_backend(backend):
        torch.library.opcheck(torch.ops.slimops.gat_forward, (h, a_src, a_dst, indptr, indices, 0.2, 0.3, 1, 0))
        out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, 0.2, 0.3, 1, 0)
        g = torch.randn_like(out)
        torch.library.opcheck(torch.ops.slimops.gat_backward,
                              (g, h.detach(), a_src.detach(), a_dst.detach(), indptr, indices, out.detach(), lse,
                               0.2, 0.3, 1, 0))
        torch.library.opcheck(torch.ops.slimops.gat_merge, (torch.stack([out, out]).detach(), torch.stack([lse, lse])))
        a_edge = torch.randn(indices.numel(), 2, requires_grad=True)
        torch.library.opcheck(torch.ops.slimops.gat_forward, (h, a_src, a_dst, indptr, indices, 0.2, 0.3, 1, 0, a_edge))


def test_backward_runs_the_forward_backend(monkeypatch, backend_reset):
    """Backward re-enters the backend forward resolved, even outside the use_backend block."""
    calls = []
    real = ref.backward
    monkeypatch.setattr(ref, "backward", lambda *a: calls.append(1) or real(*a))
    n = 15
    indptr, indices = csr("uniform", n, 3, seed=1)
    h, a_src, a_dst = (t.requires_grad_() for t in inputs(n, n, 2, 3))
    with slimops.use_backend("reference"):
        out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices)
    out.sum().backward()
    assert calls == [1]


def test_torch_compile_fullgraph_matches_eager():
    """The GAT ops trace into one graph (fake kernels, autograd; attention dropout with its seed) and give
    eager's forward and gradients."""
    from slimops.gat.api import csr_from_edge_index, gat_attention

    torch._dynamo.reset()
    torch.manual_seed(0)
    n, heads, ch = 50, 2, 8
    h = torch.randn(n, heads, ch, requires_grad=True)
    a_s = torch.randn(n, heads, requires_grad=True)
    a_d = torch.randn(n, heads, requires_grad=True)
    indptr, indices = csr_from_edge_index(torch.randint(0, n, (2, 300)), n)

    def f(h, a_s, a_d):
        return gat_attention(h, a_s, a_d, indptr, indices, 0.2, 0.3, True, seed=7)

    grads = []
    for fn in (torch.compile(f, fullgraph=True), f):
        out = fn(h, a_s, a_d)
        grads.append((out.detach(), *torch.autograd.grad(out.square().sum(), (h, a_s, a_d))))
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2])
def test_scores_reference_matches_autograd(k):
    """gat_scores (FusedGATConv's a_src / a_dst: (h * att).sum(-1)) and its backward against autograd of PyG's
    formula."""
    h = torch.randn(13, 3, 5, requires_grad=True)
    att = torch.randn(k, 3, 5, requires_grad=True)
    g, gh_in = torch.randn(k, 13, 3), torch.randn(13, 3, 5)
    want = torch.stack([(h * att[i]).sum(-1) for i in range(k)])
    close(ref.scores(h.detach(), att.detach()), want, 1e-6, 1e-5, "scores")
    wh, wa = torch.autograd.grad(want, (h, att), g)
    gh, ga = ref.scores_backward(g, h.detach(), att.detach(), gh_in)
    close(gh, wh + gh_in, 1e-6, 1e-5, "grad_h")
    close(ga, wa, 1e-6, 1e-5, "grad_att")


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_scores_op(backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    h = torch.randn(9, 2, 6, requires_grad=True)
    att = torch.randn(2, 2, 6, requires_grad=True)
    with slimops.use_backend(backend):
        torch.library.opcheck(torch.ops.slimops.gat_scores, (h, att))
        torch.library.opcheck(torch.ops.slimops.gat_scores_backward,
                              (torch.randn(2, 9, 2), h.detach(), att.detach(), torch.randn(9, 2, 6)))
        with pytest.raises(ValueError, match="att must have shape"):
            torch.ops.slimops.gat_scores(h, att[:, :1])
        with pytest.raises(TypeError, match="att must have h's dtype or float32"):
            torch.ops.slimops.gat_scores(h, att.double())
        with pytest.raises(ValueError, match="grad must be"):
            torch.ops.slimops.gat_scores_backward(torch.randn(9, 2, 2), h.detach(), att.detach())
