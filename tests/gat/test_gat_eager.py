"""The eager CPU path of the GAT ops (slimops/gat/eager.py): the same results, gradients and errors as
``torch.ops.slimops.gat_forward`` / ``gat_scores``, and the ops themselves wherever something needs to see
them (tracing, dispatch modes, functorch, other backends)."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.gat import eager, gat_attention, node_scores
from slimops.gat.dispatch import pick
from slimops.testing import OpLog

from .graphs import csr, inputs

pytestmark = pytest.mark.skipif(pick("gat_forward", torch.empty(0)) != "native",
                                reason="the eager path runs the C++ CPU kernels, which this build lacks")


def _graph_inputs(edge_scores: bool, requires_grad: bool = True, n_src: int = 33):
    indptr, indices = csr("powerlaw", 40, 3.5, seed=4, n_src=n_src)
    h, a_src, a_dst = inputs(n_src, 40, 3, 8, seed=4)
    a_edge = torch.randn(indices.numel(), 3, generator=torch.Generator().manual_seed(9)) if edge_scores else None
    leaves = [t.requires_grad_(requires_grad) for t in (h, a_src, a_dst, a_edge) if t is not None]
    return h, a_src, a_dst, indptr, indices, a_edge, leaves


def _run(fast: bool, monkeypatch, edge_scores: bool, p: float):
    h, a_src, a_dst, indptr, indices, a_edge, leaves = _graph_inputs(edge_scores)
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(eager, "applies", lambda *a, **k: False)
        out, lse = gat_attention(h, a_src.t().contiguous().t(), a_dst, indptr, indices, 0.2, p, True, seed=7,
                                 offset=3, a_edge=a_edge, return_lse=True)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
    return out, lse, [t.grad for t in leaves]


@pytest.mark.parametrize("edge_scores", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_attention_same_as_the_op(monkeypatch, edge_scores, p):
    got, want = _run(True, monkeypatch, edge_scores, p), _run(False, monkeypatch, edge_scores, p)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    for g, w in zip(got[2], want[2]):
        assert torch.equal(g, w)


def test_scores_same_as_the_op(monkeypatch):
    h = torch.randn(4, 17, 16, requires_grad=True)  # used as [17, 4, 16], not contiguous
    att = torch.randn(2, 4, 16, requires_grad=True)
    results = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(eager, "applies", lambda *a, **k: False)
            h.grad = att.grad = None
            s = node_scores(h.transpose(0, 1), att)
            s.backward(torch.ones_like(s))
            results.append((s.detach(), h.grad, att.grad))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_takes_the_path_only_in_plain_eager_mode():
    h, a_src, a_dst, indptr, indices, _, _ = _graph_inputs(False, requires_grad=False)
    assert eager.applies(("gat_forward", "gat_backward"), h, a_src, a_dst, indptr, indices)
    with OpLog() as log:  # a dispatch mode sees the op
        gat_attention(h, a_src, a_dst, indptr, indices)
        node_scores(h, torch.randn(1, 3, 8))
    assert "slimops.gat_forward" in log.ops and "slimops.gat_scores" in log.ops
    with slimops.use_backend("reference"):
        assert not eager.applies(("gat_forward", "gat_backward"), h, a_src, a_dst, indptr, indices)
    meta = h.to("meta")
    assert not eager.applies(("gat_forward",), meta, a_src, a_dst, indptr, indices)


def test_compiles_through_the_op():
    h, a_src, a_dst, indptr, indices, _, _ = _graph_inputs(False, requires_grad=False)
    fn = torch.compile(lambda *t: gat_attention(*t), backend="eager", fullgraph=True)
    torch.testing.assert_close(fn(h, a_src, a_dst, indptr, indices), gat_attention(h, a_src, a_dst, indptr, indices))


def test_double_backward_raises():
    h, a_src, a_dst, indptr, indices, _, _ = _graph_inputs(False)
    out = gat_attention(h, a_src, a_dst, indptr, indices)
    (gh,) = torch.autograd.grad(out.sum(), h, create_graph=True)
    with pytest.raises(RuntimeError):
        gh.sum().backward()


def test_bad_input_same_errors():
    h, a_src, a_dst, indptr, indices, _, _ = _graph_inputs(False, requires_grad=False)
    with pytest.raises(ValueError, match="a_dst must have shape"):
        gat_attention(h, a_src, a_dst[:, :2], indptr, indices)
    with pytest.raises(ValueError, match="indices"):
        gat_attention(h, a_src, a_dst, indptr, indices.clamp(max=10**6) + 1000)
    with pytest.raises(ValueError, match="att must have shape"):
        node_scores(h, torch.randn(1, 3, 7))


@pytest.mark.parametrize("edge_scores", [False, True])
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_scores_attention_same_as_the_two_ops(monkeypatch, edge_scores, p):
    """One autograd step for FusedGATConv's scores and attention: the two ops' results; gradients to fp32
    rounding (the score gradients are added into grad_h inside the kernel, in another order), also when
    the scores themselves get a gradient (return_attention_weights)."""
    results = []
    for fast in (True, False):
        h, _, _, indptr, indices, a_edge, _ = _graph_inputs(edge_scores, requires_grad=False, n_src=40)
        h.requires_grad_(True)
        att = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
        leaves = [h, att] + ([a_edge.requires_grad_(True)] if a_edge is not None else [])
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(eager, "applies", lambda *a, **k: False)
            s, out, lse = eager.scores_attention(h, att, indptr, indices, 0.2, p, 5, 0, a_edge)
            g = torch.Generator().manual_seed(8)
            (out * torch.randn(out.shape, generator=g)).sum().backward(retain_graph=True)
            (s * torch.randn(s.shape, generator=g)).sum().backward()
        results.append((s.detach(), out.detach(), lse, [t.grad for t in leaves]))
    (s1, o1, l1, g1), (s2, o2, l2, g2) = results
    assert torch.equal(s1, s2) and torch.equal(o1, o2) and torch.equal(l1, l2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_kept_transposed_index_same_gradients(index_dtype, p):
    """gat_backward with the graph's kept transposed index (cpu.transpose) gives the gradients it gives when it
    builds the index itself; FusedGATConv builds it once per graph."""
    from slimops.gat import cpu

    indptr, indices = csr("isolated", 50, 3.0, seed=2, n_src=37, index_dtype=index_dtype)
    h, a_src, a_dst = inputs(37, 50, 2, 16, seed=2)
    out, lse = cpu.forward(h, a_src, a_dst, indptr, indices, 0.2, p, 11, 0)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    built = cpu.backward(g, h, a_src, a_dst, indptr, indices, out, lse, 0.2, p, 11, 0)
    kept = cpu.backward(g, h, a_src, a_dst, indptr, indices, out, lse, 0.2, p, 11, 0,
                        csc=cpu.transpose(indptr, indices, 37))
    for a, b in zip(built, kept):
        assert torch.equal(a, b)
    colptr, csc_edge, csc_row = cpu.transpose(indptr, indices, 37)
    assert torch.equal(colptr[1:] - colptr[:-1], torch.bincount(indices.long(), minlength=37))
    assert torch.equal(indices[csc_edge.long()].long(), torch.repeat_interleave(torch.arange(37), colptr.diff()))
    with pytest.raises(ValueError, match="malformed CSR"):
        cpu.transpose(indptr, indices.clamp(max=36) + 1, 37)

    from slimops.nn import FusedGATConv

    layer = FusedGATConv(8, 4, heads=2)
    x = torch.randn(50, 8, requires_grad=True)
    ei = torch.stack([indices.long() % 50, torch.repeat_interleave(torch.arange(50), indptr.diff().long())])
    layer(x, ei).sum().backward()
    first = layer._graph._csc
    assert first is not None
    layer(x, ei).sum().backward()
    assert layer._graph._csc is first


@pytest.mark.parametrize("edge_dim", [0, 3])
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_attention_v2_same_as_the_op(monkeypatch, edge_dim, p):
    """gatv2_attention on the eager path: the op's outputs and every gradient, bit for bit."""
    from slimops.gat import gatv2_attention

    indptr, indices = csr("powerlaw", 40, 3.5, seed=6, n_src=31)
    g = torch.Generator().manual_seed(6)
    results = []
    for fast in (True, False):
        g.manual_seed(6)
        xl, xr = torch.randn(31, 2, 8, generator=g), torch.randn(40, 2, 8, generator=g)
        att = torch.randn(2, 8, generator=g)
        ea = torch.randn(indices.numel(), edge_dim, generator=g) if edge_dim else None
        w = torch.randn(16, edge_dim, generator=g) if edge_dim else None
        leaves = [t.requires_grad_(True) for t in (xl, xr, att, ea, w) if t is not None]
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(eager, "applies", lambda *a, **k: False)
            out = gatv2_attention(xl, xr, att, indptr, indices, ea, w, 0.2, p, True, seed=3)
            out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
        results.append([out.detach()] + [t.grad for t in leaves])
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("heads,channels", [(3, 8), (8, 8), (2, 5)])
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_scores_attention_with_the_bias_in_the_kernel(monkeypatch, heads, channels, p):
    """FusedGATConv's bias added by the CPU kernel (out + bias, and D = g . out - g . bias in backward): the two
    ops and an add, to fp32 rounding, on a graph with rows of no edge (out = bias there); the bias is given to
    the kernel, and its gradient is grad_out summed over nodes."""
    from slimops.gat import cpu

    seen = []
    results = []
    for fast in (True, False):
        indptr, indices = csr("isolated", 50, 3.0, seed=3, n_src=50)
        h = torch.randn(50, heads, channels, generator=torch.Generator().manual_seed(1), requires_grad=True)
        att = torch.randn(2, heads, channels, generator=torch.Generator().manual_seed(2), requires_grad=True)
        bias = torch.randn(heads * channels, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
        with monkeypatch.context() as m:
            if fast:
                forward = cpu.forward
                m.setattr(cpu, "forward", lambda *a, **k: (seen.append(a[-1] is not None), forward(*a, **k))[1])
            else:
                m.setattr(eager, "applies", lambda *a, **k: False)
            s, out, lse = eager.scores_attention(h, att, indptr, indices, 0.2, p, 5, 0, None, bias=bias)
            out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(8)))
        results.append((out.detach(), lse, [h.grad, att.grad, bias.grad]))
    assert seen == [True]
    (o1, l1, g1), (o2, l2, g2) = results
    assert torch.equal(l1, l2)
    torch.testing.assert_close(o1, o2, atol=1e-6, rtol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_scores_attention_rejects_a_bias_of_the_wrong_size():
    h = torch.randn(5, 2, 4)
    indptr, indices = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([0, 1, 2, 3, 4])
    with pytest.raises(ValueError, match="bias must be a vector of H \\* C = 8"):
        eager.scores_attention(h, torch.randn(2, 2, 4), indptr, indices, 0.2, 0.0, 0, 0, bias=torch.randn(4))


def test_backward_sums_the_bias_gradient_in_blocks():
    """gat_backward's grad_bias: grad_out summed over every row (rows of no edge included), across three blocks of
    64 rows and a partial one, the same for 1 and 2 threads; the other gradients as without it, and grad_a_src /
    grad_a_dst written into ``score_grads`` as returned without it."""
    from slimops.gat import cpu

    indptr, indices = csr("isolated", 200, 3.0, seed=4, n_src=200)
    h, a_src, a_dst = inputs(200, 200, 8, 8, seed=4)
    bias = torch.randn(64, generator=torch.Generator().manual_seed(6))
    out, lse = cpu.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0, None, bias)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    plain = cpu.backward(g, h, a_src, a_dst, indptr, indices, out, lse, 0.2, 0.0, 0, 0, bias=bias)
    sums = []
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            gb, stacked = torch.full((64,), float("nan")), torch.full((2, 200, 8), float("nan"))
            got = cpu.backward(g, h, a_src, a_dst, indptr, indices, out, lse, 0.2, 0.0, 0, 0, bias=bias,
                               grad_bias=gb, score_grads=stacked)
            assert torch.equal(got[0], plain[0]) and torch.equal(stacked[0], plain[1])
            assert torch.equal(stacked[1], plain[2])
            sums.append(gb)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(sums[0], sums[1])
    assert (indptr.diff() == 0).any()
    torch.testing.assert_close(sums[0].double(), g.double().reshape(200, 64).sum(0), atol=1e-5, rtol=1e-6)


def test_forward_lse_on_sums_across_binades():
    """The forward's log-sum-exp with 8 heads (the vector log of the row sums): equal scores z on a row of d
    edges give lse = z + log(d) up to rounding, for d = 1 ... 700 (sums over ten binades): within half an ulp
    of lse (its last rounding) and 2 ulp of log(d) (as float32 logf: 0.58 of that bound at most here); a NaN
    score gives NaN."""
    from slimops.gat import cpu

    n = 700
    deg = torch.arange(1, n + 1)
    indptr = torch.cat([torch.zeros(1, dtype=torch.int64), deg.cumsum(0)])
    indices = torch.arange(int(indptr[-1])) % 5
    h = torch.randn(5, 8, 8, generator=torch.Generator().manual_seed(1))
    a_src = torch.full((5, 8), 0.75)
    a_dst = torch.linspace(-3.0, 3.0, n * 8).reshape(n, 8)
    a_src[3, 5] = float("nan")
    _, lse = cpu.forward(h, a_src, a_dst, indptr, indices, 0.2, 0.0, 0, 0)
    z = a_dst + 0.75  # the row's max, in float32 as the kernel's
    expect = torch.where(z > 0, z, 0.2 * z).double() + deg.double().log().unsqueeze(1)
    has_nan = torch.zeros(n, 8, dtype=torch.bool)
    has_nan[:, 5] = torch.tensor([bool((indices[indptr[i]:indptr[i + 1]] == 3).any()) for i in range(n)])
    assert 0 < int(has_nan.sum()) < n
    assert lse[has_nan].isnan().all()
    ok = ~has_nan
    eps = torch.finfo(torch.float32).eps
    bound = eps / 2 * lse[ok].double().abs() + eps * deg.double().log().unsqueeze(1).expand(n, 8)[ok]
    assert ((lse[ok].double() - expect[ok]).abs() <= bound).all()
