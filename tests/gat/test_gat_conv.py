"""FusedGATConv against PyG's GATConv (same weights): output and every gradient; the CSR cache."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.nn import FusedGATConv

from .graphs import close, edge_index

pyg = pytest.importorskip("torch_geometric.nn", reason="PyG not installed (.ci/bootstrap installs it)")

BACKENDS = ["reference", pytest.param("native", marks=pytest.mark.skipif(
    slimops._backend.native_module("_C") is None, reason="slimops._C not built"))]


def pair(in_ch, out_ch, **kw):
    torch.manual_seed(0)
    theirs = pyg.GATConv(in_ch, out_ch, **kw)
    ours = FusedGATConv(in_ch, out_ch, **kw)
    with torch.no_grad():  # PyG zero-initialises the bias: give it values so that it is tested
        if theirs.bias is not None:
            theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"])
@pytest.mark.parametrize("heads,out_ch,concat", [(1, 5, True), (3, 7, True), (4, 4, False)])
def test_matches_pyg(backend, kind, heads, out_ch, concat, backend_reset):
    n, in_ch = 57, 11
    ei = edge_index(kind, n, 4.2, seed=heads)
    ours, theirs = pair(in_ch, out_ch, heads=heads, concat=concat)
    x = torch.randn(n, in_ch)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with slimops.use_backend(backend):
        y1 = ours(x1, ei)
        g = torch.randn_like(y1)
        y1.backward(g)
    y2 = theirs(x2, ei)
    y2.backward(g)
    close(y1, y2, 1e-5, 1e-4, "out")
    close(x1.grad, x2.grad, 1e-5, 1e-4, "grad x")
    p2 = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, p2[name].grad, 1e-5, 1e-4, f"grad {name}")


@pytest.mark.parametrize("kw", [dict(add_self_loops=False), dict(bias=False), dict(residual=True),
                                dict(negative_slope=0.05, heads=2), dict(dropout=0.5, heads=2)])
def test_options_match_pyg(kw, backend_reset):
    n, in_ch = 40, 6
    ei = edge_index("selfloops", n, 3, seed=1)
    ours, theirs = pair(in_ch, 5, **kw)
    ours.eval(), theirs.eval()  # dropout differs by construction (different RNGs); compare in eval mode
    x = torch.randn(n, in_ch)
    close(ours(x, ei), theirs(x, ei), 1e-5, 1e-4, str(kw))


def test_state_dict_names_and_shapes():
    ours, theirs = pair(8, 3, heads=2, residual=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_dropout_training():
    ei = edge_index("uniform", 30, 5)
    conv = FusedGATConv(4, 3, heads=2, dropout=0.6)
    x = torch.randn(30, 4)
    torch.manual_seed(1)
    a = conv(x, ei)
    torch.manual_seed(1)
    b = conv(x, ei)
    assert torch.equal(a, b)
    assert not torch.equal(a, conv(x, ei))
    conv.eval()
    assert torch.equal(conv(x, ei), conv(x, ei))


def test_graph_cache_identity_and_version():
    conv = FusedGATConv(4, 3)
    ei = edge_index("uniform", 20, 3)
    c1 = conv.graph(ei, 20, 20, 20)
    assert conv.graph(ei, 20, 20, 20) is c1
    other = ei.clone()  # same shape and values, another tensor: rebuilt
    assert conv.graph(other, 20, 20, 20) is not c1
    c2 = conv.graph(other, 20, 20, 20)
    assert conv.graph(other, 20, 21, 20) is not c2  # other sizes: rebuilt
    c2 = conv.graph(other, 20, 20, 20)
    other[0, 0] = (other[0, 0] + 1) % 20  # in-place change bumps the version: rebuilt
    c3 = conv.graph(other, 20, 20, 20)
    assert c3 is not c2
    assert not torch.equal(c3.indices, c2.indices) or not torch.equal(c3.indptr, c2.indptr)


def test_bad_edge_index():
    conv = FusedGATConv(4, 3)
    with pytest.raises(ValueError, match="outside the graph"):
        conv(torch.randn(5, 4), torch.tensor([[0, 7], [1, 2]]))
    with pytest.raises(ValueError, match="x must have shape"):
        conv(torch.randn(5, 3), torch.tensor([[0, 1], [1, 2]]))

