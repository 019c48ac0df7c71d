"""The GATv2 reference: against a naive per-row loop and autograd through its own forward; partials merged by
gat_merge; bad input; opcheck; torch.compile."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.gat import v2_reference as ref
from slimops.gat.reference import dropout_weights

from .graphs import close, csr
from .test_gat_reference import _blocks
from .v2_inputs import run, v2_inputs

KINDS = ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"]


def naive_forward(xl, xr, att, ea, w, indptr, indices, slope, drop=None):
    """Row by row in fp64 with torch.softmax: an oracle independent of the reference's scatter code."""
    n_dst, heads, channels = xr.shape
    out = torch.zeros(n_dst, heads, channels, dtype=torch.float64)
    for i in range(n_dst):
        s, e = int(indptr[i]), int(indptr[i + 1])
        if s == e:
            continue
        j = indices[s:e].long()
        pre = xl[j].double() + xr[i].double() + (ea[s:e].double() @ w.double().t()).view(-1, heads, channels)
        alpha = torch.softmax((torch.nn.functional.leaky_relu(pre, slope) * att.double()).sum(-1), 0)
        if drop is not None:
            alpha = alpha * drop[s:e].double()
        out[i] = (alpha[:, :, None] * xl[j].double()).sum(0)
    return out


def make(kind, n_src, n_dst, heads, channels, edge_dim, deg=4.5, seed=0, dtype=torch.float32, scale=1.0,
         index_dtype=torch.int64):
    indptr, indices = csr(kind, n_dst, deg, seed=seed, n_src=n_src, index_dtype=index_dtype)
    return (*v2_inputs(n_src, n_dst, heads, channels, indices.numel(), edge_dim, dtype, seed, scale), indptr, indices)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heads,channels,edge_dim", [(1, 1, 0), (3, 5, 2), (2, 16, 0)])
def test_forward_matches_naive(kind, heads, channels, edge_dim):
    args = make(kind, 31, 37, heads, channels, edge_dim, seed=heads, scale=2.0)
    out, lse = ref.forward(*args, 0.2, 0.0, 0, 0)
    close(out, naive_forward(*args, 0.2), 1e-5, 1e-5, "out")
    indptr = args[5]
    empty = indptr[1:] == indptr[:-1]
    assert torch.isneginf(lse[empty]).all() and torch.isfinite(lse[~empty]).all()
    assert (out[empty] == 0).all()


def test_dropout_forward_matches_naive():
    args = make("uniform", 25, 25, 2, 3, 2, deg=5, seed=4)
    out, _ = ref.forward(*args, 0.2, 0.5, 99, 7)
    w = dropout_weights(99, 7, args[6].numel(), 2, 0.5)
    close(out, naive_forward(*args, 0.2, w), 1e-5, 1e-5)


def _autograd_grads(args, slope, p, seed, offset, grad_out):
    leaves = [t.detach().clone().requires_grad_() for t in args[:5]]
    out, _ = ref.forward(*leaves, *args[5:], slope, p, seed, offset)
    return torch.autograd.grad(out, leaves, grad_out, allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p,edge_dim", [(0.0, 0), (0.0, 3), (0.4, 2)])
def test_backward_matches_autograd(kind, p, edge_dim):
    args = make(kind, 29, 23, 3, 7, edge_dim, deg=5.0, seed=3, scale=2.0)
    out, lse = ref.forward(*args, 0.2, p, 11, 5)
    g = torch.randn_like(out)
    got = ref.backward(g, *args, out, lse, 0.2, p, 11, 5)
    want = _autograd_grads(args, 0.2, p, 11, 5, g)
    for name, a, b in zip(("xl", "xr", "att", "edge_attr", "w_edge"), got, want):
        close(a, b, 1e-5, 1e-4, f"grad_{name}")


def test_autograd_through_op_and_api():
    args = make("powerlaw", 31, 31, 2, 6, 3, deg=6, seed=2)
    leaves = [t.clone().requires_grad_() for t in args[:5]]
    with slimops.use_backend("reference"):
        out = slimops.gat.gatv2_attention(leaves[0], leaves[1], leaves[2], *args[5:], edge_attr=leaves[3],
                                          w_edge=leaves[4])
        out.square().sum().backward()
    want = _autograd_grads(args, 0.2, 0.0, 0, 0, 2 * out.detach())
    for a, b in zip(leaves, want):
        close(a.grad, b, 1e-5, 1e-4)


def _v2_blocks(args, bounds):
    """Split the source nodes at ``bounds``: per block (xl_b, edge_attr_b, indptr_b, indices_b), indices local."""
    xl, _, _, ea, _, indptr, indices = args
    blocks = _blocks(xl, xl[:, :, 0], indptr, indices, bounds)
    out = []
    for (lo, hi), (xl_b, _, ip, ix) in zip(zip(bounds[:-1], bounds[1:]), blocks):
        keep = (indices >= lo) & (indices < hi)  # _blocks keeps each row's edges in CSR order
        out.append((xl_b, ea[keep], ip, ix))
    return out


@pytest.mark.parametrize("kind,edge_dim", [("uniform", 0), ("powerlaw", 3), ("isolated", 2)])
def test_partials_merge_with_gat_merge(kind, edge_dim):
    """GATv2 partials over blocks of sources merge with the GAT op's gat_merge, unchanged; the partial backward
    with the merged statistics gives each block's exact gradients."""
    args = make(kind, 41, 33, 2, 5, edge_dim, deg=4, seed=7, scale=2.0)
    xl, xr, att, ea, w, indptr, indices = args
    full, full_lse = ref.forward(*args, 0.2, 0.0, 0, 0)
    bounds = [0, 10, 11, 30, 41]
    blocks = _v2_blocks(args, bounds)
    parts = []
    for xl_b, ea_b, ip, ix in blocks:
        kw = dict(edge_attr=ea_b, w_edge=w) if edge_dim else {}
        parts.append(slimops.gat.gatv2_partial_forward(xl_b, xr, att, ip, ix, **kw))
    out, lse = slimops.gat.merge([p[0] for p in parts], [p[1] for p in parts])
    close(out, full, 1e-5, 1e-5, "merged out")
    close(lse, full_lse, 1e-5, 1e-5, "merged lse")
    g = torch.randn_like(full)
    want = ref.backward(g, *args, full, full_lse, 0.2, 0.0, 0, 0)
    grads = []
    for xl_b, ea_b, ip, ix in blocks:
        kw = dict(edge_attr=ea_b, w_edge=w) if edge_dim else {}
        grads.append(slimops.gat.gatv2_partial_backward(g, out, lse, xl_b, xr, att, ip, ix, **kw))
    close(torch.cat([x[0] for x in grads]), want[0], 1e-5, 1e-4, "grad_xl")
    for n, name in ((1, "grad_xr"), (2, "grad_att"), (4, "grad_w_edge")):
        close(sum(x[n] for x in grads), want[n], 1e-5, 1e-4, name)
    if edge_dim:  # each edge's gradient, back in the full CSR order
        gea = torch.empty_like(ea)
        for (lo, hi), x in zip(zip(bounds[:-1], bounds[1:]), grads):
            keep = (indices >= lo) & (indices < hi)
            gea[keep] = x[3]
        close(gea, want[3], 1e-5, 1e-4, "grad_edge_attr")


def _good():
    return make("uniform", 6, 5, 2, 3, 2, deg=2)


@pytest.mark.parametrize("mutate,exc,match", [
    (lambda a: (a[0][0], *a[1:]), ValueError, "xl must be 3-d"),
    (lambda a: (a[0].double(), *a[1:]), TypeError, "xl must be float32"),
    (lambda a: (a[0], a[1][:, :1], *a[2:]), ValueError, "xr must have shape"),
    (lambda a: (a[0], a[1].half(), *a[2:]), TypeError, "xr must have xl's dtype"),
    (lambda a: (*a[:2], a[2][:1], *a[3:]), ValueError, "att must have shape"),
    (lambda a: (*a[:3], a[3][:-1], *a[4:]), ValueError, "edge_attr must have shape"),
    (lambda a: (*a[:4], a[4][:, :1], *a[5:]), ValueError, "w_edge must have shape"),
    (lambda a: (*a[:4], a[4].bfloat16(), *a[5:]), TypeError, "w_edge must have xl's dtype"),
    (lambda a: (*a[:5], a[5][:-1], a[6]), ValueError, "indptr must be 1-d"),
    (lambda a: (*a[:5], a[5].int(), a[6]), TypeError, "both be int32 or both int64"),
    (lambda a: (*a[:5], a[5], a[6].clone().fill_(6)), ValueError, "indices must lie in"),
    (lambda a: (*a[:5], a[5], a[6].clone().fill_(-1)), ValueError, "indices must lie in"),
    (lambda a: (*a[:5], a[5].flip(0), a[6]), ValueError, "malformed CSR"),
    (lambda a: (*a[:5], a[5] + 1, a[6]), ValueError, "indptr\\[0\\] must be 0"),
    (lambda a: (*a[:3], a[3].to("meta"), *a[4:]), ValueError, "edge_attr must be on xl's device"),
])
@pytest.mark.parametrize("backend", ["reference", "native"])
def test_bad_input(mutate, exc, match, backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    args = mutate(_good())
    with slimops.use_backend(backend), pytest.raises(exc, match=match):
        torch.ops.slimops.gatv2_forward(*args, 0.2, 0.0, 0, 0)


def test_bad_scalars_and_backward_args():
    args = _good()
    with pytest.raises(ValueError, match="dropout must be in"):
        torch.ops.slimops.gatv2_forward(*args, 0.2, 1.0, 0, 0)
    out, lse = torch.ops.slimops.gatv2_forward(*args, 0.2, 0.0, 0, 0)
    with pytest.raises(ValueError, match="lse must be float32"):
        torch.ops.slimops.gatv2_backward(out, *args, out, lse[:, :1], 0.2, 0.0, 0, 0)
    with pytest.raises(ValueError, match="grad_out must have shape"):
        torch.ops.slimops.gatv2_backward(out[:-1], *args, out, lse, 0.2, 0.0, 0, 0)
    with pytest.raises(ValueError, match="edge_attr and w_edge must be given together"):
        slimops.gat.gatv2_attention(*args[:3], *args[5:], edge_attr=args[3])


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_empty_graph_and_no_edges(backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    xl, xr, att, _, w = v2_inputs(5, 4, 2, 3, 0, 2)
    ea = torch.zeros(0, 2)
    no_edges = (xl, xr, att, ea, w, torch.zeros(5, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    out, lse, grads = run(backend, no_edges)
    assert (out == 0).all() and torch.isneginf(lse).all() and all((g == 0).all() for g in grads)
    empty = v2_inputs(0, 0, 2, 3, 0, 2)
    out, lse, grads = run(backend, (*empty, torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)))
    assert out.shape == (0, 2, 3) and grads[2].shape == (2, 3) and (grads[2] == 0).all()


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_opcheck(backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    args = make("isolated", 12, 10, 2, 4, 3, deg=3, seed=9)
    leaves = [t.requires_grad_() for t in args[:5]]
    with slimops.use_backend(backend):
        torch.library.opcheck(torch.ops.slimops.gatv2_forward, (*leaves, *args[5:], 0.2, 0.3, 1, 0))
        out, lse = torch.ops.slimops.gatv2_forward(*leaves, *args[5:], 0.2, 0.3, 1, 0)
        g = torch.randn_like(out)
        torch.library.opcheck(torch.ops.slimops.gatv2_backward,
                              (g, *(t.detach() for t in leaves), *args[5:], out.detach(), lse, 0.2, 0.3, 1, 0))


def test_backward_runs_the_forward_backend(monkeypatch, backend_reset):
    """Backward re-enters the backend forward resolved, even outside the use_backend block."""
    calls = []
    real = ref.backward
    monkeypatch.setattr(ref, "backward", lambda *a: calls.append(1) or real(*a))
    args = make("uniform", 15, 15, 2, 3, 0, deg=3, seed=1)
    xl = args[0].requires_grad_()
    with slimops.use_backend("reference"):
        out = slimops.gat.gatv2_attention(xl, *args[1:3], *args[5:])
    out.sum().backward()
    assert calls == [1]


def test_torch_compile_fullgraph_matches_eager():
    """The GATv2 ops trace into one graph (fake kernels, autograd, dropout with its seed) and give eager's
    forward and every gradient."""
    torch._dynamo.reset()
    args = make("powerlaw", 40, 40, 2, 8, 3, deg=6, seed=5)
    leaves = [t.clone().requires_grad_() for t in args[:5]]
    indptr, indices = args[5:]

    def f(xl, xr, att, ea, w):
        return slimops.gat.gatv2_attention(xl, xr, att, indptr, indices, ea, w, 0.2, 0.3, True, seed=7)

    results = []
    for fn in (torch.compile(f, fullgraph=True), f):
        out = fn(*leaves)
        results.append((out.detach(), *torch.autograd.grad(out.square().sum(), leaves)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("edge_dim,p", [(0, 0.0), (3, 0.3)])
def test_sequential_aggregate_autograd(edge_dim, p, backend_reset):
    """Block by block (SAR) forward and backward equal the whole graph's, every gradient included; with dropout
    block b's counters continue where block b-1's stopped, so the mask is the whole graph's only when the
    blocks' edges are in CSR order: checked against the same blocks through the reference."""
    args = make("uniform", 40, 30, 3, 4, edge_dim, deg=5, seed=1)
    leaves = [t.clone().requires_grad_() for t in args[:5]]
    xl, xr, att, ea, w = leaves
    bounds = [0, 13, 27, 40]
    blocks = [(xl_b, ea_b if edge_dim else None, ip, ix) for xl_b, ea_b, ip, ix in
              _v2_blocks((xl, xr, att, ea, w, *args[5:]), bounds)]
    out = slimops.gat.gatv2_sequential_aggregate(blocks, xr, att, w if edge_dim else None, dropout=p, seed=5)
    out.square().sum().backward()
    if p == 0:
        want_out, _ = ref.forward(*args, 0.2, 0.0, 0, 0)
        close(out, want_out, 1e-5, 1e-5, "out")
        want = _autograd_grads(args, 0.2, 0.0, 0, 0, 2 * out.detach())
        for name, a, b in zip(("xl", "xr", "att", "edge_attr", "w_edge")[:5 if edge_dim else 3], leaves, want):
            close(a.grad, b, 1e-5, 1e-4, f"grad_{name}")
        return
    with slimops.use_backend("reference"):  # the same blocks, every op through the reference
        leaves2 = [t.detach().clone().requires_grad_() for t in args[:5]]
        blocks2 = [(xl_b, ea_b, ip, ix) for xl_b, ea_b, ip, ix in _v2_blocks((*leaves2, *args[5:]), bounds)]
        out2 = slimops.gat.gatv2_sequential_aggregate(blocks2, leaves2[1], leaves2[2], leaves2[4], dropout=p, seed=5)
        out2.square().sum().backward()
    close(out, out2, 2e-6, 2e-5, "out")
    for a, b in zip(leaves, leaves2):
        close(a.grad, b.grad, 2e-5, 2e-4)
