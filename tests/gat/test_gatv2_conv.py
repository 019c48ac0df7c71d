"""FusedGATv2Conv against PyG's GATv2Conv (same weights): output and every gradient (lin_edge's and edge_attr's
included), options, bipartite inputs, fill values, state dicts both ways, attention weights, dropout, bad
input, what is kept for backward."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.nn import FusedGATv2Conv

from .graphs import close, edge_index

pyg = pytest.importorskip("torch_geometric.nn", reason="PyG not installed (.ci/bootstrap installs it)")

BACKENDS = ["reference", pytest.param("native", marks=pytest.mark.skipif(
    slimops._backend.native_module("_C") is None, reason="slimops._C not built"))]


def pair(in_ch, out_ch, **kw):
    torch.manual_seed(0)
    theirs = pyg.GATv2Conv(in_ch, out_ch, **kw)
    ours = FusedGATv2Conv(in_ch, out_ch, **kw)
    with torch.no_grad():  # PyG zero-initialises the bias: give it values so that it is tested
        if theirs.bias is not None:
            theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def both(ours, theirs, x, ei, ea=None, backend="auto", tol=(2e-5, 2e-4)):
    """Outputs and every gradient (x, edge_attr, each parameter) of both layers, compared."""
    xs = [tuple(t.clone().requires_grad_() for t in x) if isinstance(x, tuple) else x.clone().requires_grad_()
          for _ in range(2)]
    eas = [None if ea is None else ea.clone().requires_grad_() for _ in range(2)]
    with slimops.use_backend(backend):
        y1 = ours(xs[0], ei, eas[0])
        g = torch.randn(y1.shape, generator=torch.Generator().manual_seed(7))
        y1.backward(g)
    y2 = theirs(xs[1], ei, eas[1])
    y2.backward(g)
    close(y1, y2, *tol, "out")
    for name, a, b in (("x", xs[0], xs[1]), ("edge_attr", eas[0], eas[1])):
        for u, v in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            if u is not None:
                close(u.grad, v.grad, *tol, f"grad {name}")
    p2 = dict(theirs.named_parameters())
    assert set(p2) == set(dict(ours.named_parameters()))
    for name, p in ours.named_parameters():
        close(p.grad, p2[name].grad, *tol, f"grad {name}")


# every graph kind on the native kernels; the reference (tested against autograd and a naive loop) on two
KINDS = [("native", k) for k in ("uniform", "powerlaw", "isolated", "selfloops", "duplicates")]
KINDS = [pytest.param(*bk, marks=BACKENDS[1].marks) for bk in KINDS] + [("reference", "powerlaw"),
                                                                      ("reference", "isolated")]


@pytest.mark.parametrize("backend,kind", KINDS)
@pytest.mark.parametrize("heads,out_ch,concat,edge_dim", [(1, 5, True, None), (3, 7, True, 4), (4, 4, False, 2)])
def test_matches_pyg(backend, kind, heads, out_ch, concat, edge_dim, backend_reset):
    n, in_ch = 57, 11
    ei = edge_index(kind, n, 4.2, seed=heads)
    ours, theirs = pair(in_ch, out_ch, heads=heads, concat=concat, edge_dim=edge_dim)
    ea = None if edge_dim is None else torch.randn(ei.shape[1], edge_dim)
    both(ours, theirs, torch.randn(n, in_ch), ei, ea, backend)


@pytest.mark.parametrize("kw", [dict(add_self_loops=False, edge_dim=3), dict(bias=False), dict(residual=True),
                                dict(share_weights=True, edge_dim=2), dict(negative_slope=0.05, heads=2),
                                dict(residual=True, concat=False, heads=3, share_weights=True)])
def test_options_match_pyg(kw, backend_reset):
    n = 40
    ei = edge_index("selfloops", n, 3, seed=1)
    ours, theirs = pair(6, 5, **kw)
    ea = torch.randn(ei.shape[1], kw["edge_dim"]) if "edge_dim" in kw else None
    both(ours, theirs, torch.randn(n, 6), ei, ea)


@pytest.mark.parametrize("fill_value", ["mean", "add", "max", "min", "mul", 0.5, torch.tensor([1.0, -2.0, 0.5])])
def test_fill_values_match_pyg(fill_value, backend_reset):
    """The self loops' edge features (and their gradient into edge_attr) as PyG's add_self_loops makes them."""
    n = 30
    ei = edge_index("isolated", n, 3, seed=2)
    ei = torch.cat([ei, torch.tensor([[3, 5], [3, 5]])], dim=1)  # self loops in the input are removed first
    ours, theirs = pair(5, 4, heads=2, edge_dim=3, fill_value=fill_value)
    both(ours, theirs, torch.randn(n, 5), ei, torch.randn(ei.shape[1], 3))


def test_one_dimensional_edge_attr(backend_reset):
    ei = edge_index("uniform", 25, 3, seed=3)
    ours, theirs = pair(4, 3, heads=2, edge_dim=1)
    both(ours, theirs, torch.randn(25, 4), ei, torch.randn(ei.shape[1]))


@pytest.mark.parametrize("share_weights", [False, True])
def test_bipartite_matches_pyg(share_weights, backend_reset):
    n_src, n_dst = 23, 17
    g = torch.Generator().manual_seed(4)
    ei = torch.stack([torch.randint(0, n_src, (80,), generator=g), torch.randint(0, n_dst, (80,), generator=g)])
    in_ch = (6, 6) if share_weights else (6, 9)
    ours, theirs = pair(in_ch, 5, heads=2, edge_dim=2, residual=True, share_weights=share_weights)
    x = (torch.randn(n_src, 6), torch.randn(n_dst, in_ch[1]))
    both(ours, theirs, x, ei, torch.randn(80, 2))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_layer_near_pyg_fp32(dtype, backend_reset):
    """The layer in bf16 / fp16 (native kernels, fp32 accumulation) against PyG in fp32 on the same weights."""
    n = 50
    ei = edge_index("powerlaw", n, 5, seed=5)
    ours, theirs = pair(8, 6, heads=3, edge_dim=2)
    ours = ours.to(dtype)
    x, ea = torch.randn(n, 8), torch.randn(ei.shape[1], 2)
    y = ours(x.to(dtype), ei, ea.to(dtype))  # backend auto: the native kernels where built
    assert y.dtype == dtype
    tol = 3e-2 if dtype == torch.bfloat16 else 4e-3
    close(y, theirs(x, ei, ea), tol, tol, str(dtype))


def test_state_dict_both_ways():
    for kw in (dict(heads=2, residual=True, edge_dim=3), dict(share_weights=True), dict(bias=False, concat=False)):
        ours, theirs = pair(8, 3, **kw)
        sd_o, sd_t = ours.state_dict(), theirs.state_dict()
        assert {k: v.shape for k, v in sd_o.items()} == {k: v.shape for k, v in sd_t.items()}, kw
        fresh = pyg.GATv2Conv(8, 3, **kw)
        fresh.load_state_dict(sd_o)  # ours into PyG
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in sd_o.items())


@pytest.mark.parametrize("training", [False, True])
def test_attention_weights_match_pyg(training, backend_reset):
    """(out, (edge_index, alpha)) in PyG's order; while training alpha carries the op's dropout mask."""
    ei = edge_index("selfloops", 30, 4, seed=6)
    ours, theirs = pair(5, 4, heads=2, edge_dim=2, dropout=0.5)
    ours.train(training), theirs.eval()
    x, ea = torch.randn(30, 5), torch.randn(ei.shape[1], 2)
    torch.manual_seed(3)
    y, (ei1, alpha) = ours(x, ei, ea, return_attention_weights=True)
    y2, (ei2, alpha2) = theirs(x, ei, ea, return_attention_weights=True)
    assert torch.equal(ei1, ei2)
    if not training:
        close(y, y2, 2e-5, 2e-4, "out")
        close(alpha, alpha2, 2e-6, 2e-5, "alpha")
        return
    kept = alpha != 0  # the same edges dropped in alpha and in the output: rebuild out from alpha
    assert 0.3 < kept.float().mean() < 0.7
    close(alpha[kept], alpha2[kept] * 2.0, 2e-6, 2e-5, "kept alpha = softmax / (1 - p)")
    xl = ours.lin_l(x).view(-1, 2, 4)
    want = torch.zeros(30, 2, 4).index_add_(0, ei1[1], alpha[:, :, None] * xl[ei1[0]])
    close(y, want.reshape(30, 8) + ours.bias, 2e-5, 2e-4, "out from the returned alpha")
    alpha.sum().backward()  # differentiable, as PyG's
    assert ours.att.grad is not None


def test_dropout_reproducible():
    ei = edge_index("uniform", 30, 5)
    conv = FusedGATv2Conv(4, 3, heads=2, dropout=0.6, edge_dim=2)
    x, ea = torch.randn(30, 4), torch.randn(ei.shape[1], 2)
    torch.manual_seed(1)
    a = conv(x, ei, ea)
    torch.manual_seed(1)
    b = conv(x, ei, ea)
    assert torch.equal(a, b)
    assert not torch.equal(a, conv(x, ei, ea))
    conv.eval()
    assert torch.equal(conv(x, ei, ea), conv(x, ei, ea))


def test_graph_cache_identity_and_version():
    conv = FusedGATv2Conv(4, 3)
    ei = edge_index("uniform", 20, 3)
    g1 = conv.graph(ei, 20, 20)
    assert conv.graph(ei, 20, 20) is g1
    other = ei.clone()  # same values, another tensor: rebuilt
    assert conv.graph(other, 20, 20) is not g1
    g2 = conv.graph(other, 20, 20)
    other[0, 0] = (other[0, 0] + 1) % 20  # in-place change bumps the version: rebuilt
    assert conv.graph(other, 20, 20) is not g2


def test_bad_input():
    conv = FusedGATv2Conv(4, 3, edge_dim=2)
    ei = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="outside the graph"):
        conv(torch.randn(5, 4), torch.tensor([[0, 7], [1, 2]]))
    with pytest.raises(ValueError, match="x must have shape"):
        conv(torch.randn(5, 3), ei)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        conv(torch.randn(5, 4), ei, torch.randn(3, 2))
    with pytest.raises(ValueError, match="edge_dim = 2 columns"):
        conv(torch.randn(5, 4), ei, torch.randn(2, 3))
    with pytest.raises(ValueError, match="has no edge_dim"):
        FusedGATv2Conv(4, 3)(torch.randn(5, 4), ei, torch.randn(2, 2))
    with pytest.raises(TypeError, match="pair"):
        conv((torch.randn(5, 4),), ei)
    with pytest.raises(TypeError, match="SparseTensor and torch.sparse"):
        conv(torch.randn(3, 4), torch.sparse_coo_tensor(ei, torch.ones(2), (3, 3), check_invariants=True))
    with pytest.raises(ValueError, match="lazy -1"):
        FusedGATv2Conv(-1, 3)
    with pytest.raises(ValueError, match="fill_value must be"):
        FusedGATv2Conv(4, 3, fill_value="median")
    with pytest.raises(ValueError, match="dropout must be"):
        FusedGATv2Conv(4, 3, dropout=1.0)


@pytest.mark.parametrize("edge_dim", [None, 3])
def test_saves_no_edge_sized_activation(edge_dim, backend_reset):
    """Besides its inputs the layer keeps xl, xr, out, lse and (with edge_dim) edge_attr gathered into CSR
    order ([E, D], the input's size): no E x H or E x H x C tensor."""
    n, heads, ch = 60, 4, 8
    ei = edge_index("powerlaw", n, 10, seed=3)
    conv = FusedGATv2Conv(16, ch, heads=heads, edge_dim=edge_dim)
    x = torch.randn(n, 16, requires_grad=True)
    ea = None if edge_dim is None else torch.randn(ei.shape[1], edge_dim, requires_grad=True)
    g = conv.graph(ei, n, n)
    n_edges = g.indices.numel()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t), \
            slimops.use_backend("auto"):
        conv(x, ei, ea)
    big = [tuple(t.shape) for t in saved if t.numel() >= n_edges * heads]
    allowed = {(n_edges, edge_dim)} if edge_dim else set()
    assert set(big) <= allowed | {(n_edges,)}, big


@pytest.mark.parametrize("part,mode", [("layer", "forward"), ("attention", "full")])
def test_bench_suite_smoke(part, mode):
    """slimops bench gatv2's case on a small graph: every provider runs, matches the reference, and PyG keeps
    more for backward."""
    import argparse

    from slimops.benchmarks import runner
    from slimops.gat import v2_bench

    suite = v2_bench.GATv2Suite()
    run = runner.Run(suite, argparse.Namespace(), runner.CompileBudget(0))
    policy = dict(rounds=1, round_s=0.0, max_calls_per_round=1, slow_s=60, slow_rounds=1)
    case = runner.Case("cpu", dict(graph="powerlaw", nodes=300, avg_degree=8, heads=2, channels=4, part=part), mode)
    rows = {r["provider"]: r for r in runner.run_case(run, case, suite.providers_for("cpu"), policy)}
    assert set(rows) == {"slimops", "reference", "pyg"}
    assert all(r["status"] == "ok" for r in rows.values()), [r["note"] for r in rows.values()]
    ours, theirs = rows["slimops"], rows["pyg"]
    assert theirs["saved_mib"] > ours["saved_mib"] > 0 and ours["saved_vs_pyg"] > 1 and ours["speedup_vs_pyg"] > 0
    if mode == "forward":
        assert ours["matches_reference"] is True and theirs["matches_reference"] is True
