"""FusedGATConv against PyG's GATConv (same weights): outputs and every gradient for every argument
(bipartite inputs, edge features with each fill_value, attention weights, sparse adjacencies), state dicts
both ways, dropout reproducibility, bad input, the graph cache."""

from __future__ import annotations

import os

import pytest
import torch

import slimops
from slimops.nn import FusedGATConv

from .graphs import close, edge_index

pyg = pytest.importorskip("torch_geometric.nn", reason="PyG not installed (.ci/bootstrap installs it)")

BACKENDS = ["reference", pytest.param("native", marks=pytest.mark.skipif(
    slimops._backend.native_module("_C") is None, reason="slimops._C not built"))]
TOL = (1e-5, 1e-4)


def pair(*args, **kw):
    torch.manual_seed(0)
    theirs = pyg.GATConv(*args, **kw)
    ours = FusedGATConv(*args, **kw)
    with torch.no_grad():  # PyG zero-initialises the bias: give it values so that it is tested
        if theirs.bias is not None:
            theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def leaves(*ts):
    """Two independent leaf copies of each tensor (None stays None)."""
    return [tuple(None if t is None else t.clone().requires_grad_(t.is_floating_point()) for t in ts)
            for _ in range(2)]


def run_both(ours, theirs, x, ei, edge_attr=None, backend="native", attention=False, **kw):
    """Forward (and backward of a fixed random loss) through both layers; returns their outputs and the
    gradients of every input and parameter, keyed alike."""
    results = []
    for layer, (xs, ea) in zip((ours, theirs), leaves_of(x, edge_attr)):
        ctx = slimops.use_backend(backend) if layer is ours else _null()
        with ctx:
            r = layer(xs, ei, ea, return_attention_weights=attention or None, **kw)
            y, extra = (r[0], r[1]) if attention else (r, None)
            torch.manual_seed(7)
            loss = (y * torch.randn_like(y)).sum()
            if extra is not None:
                alpha = extra[1]
                loss = loss + (alpha * torch.randn_like(alpha)).sum()
            loss.backward()
        grads = {f"x{i}": t.grad for i, t in enumerate(xs if isinstance(xs, tuple) else (xs,)) if t is not None}
        if ea is not None:
            grads["edge_attr"] = ea.grad
        grads.update({n: p.grad for n, p in layer.named_parameters()})
        results.append((y, extra, grads))
    return results


def leaves_of(x, edge_attr):
    out = []
    for _ in range(2):
        xs = tuple(None if t is None else t.clone().requires_grad_() for t in x) if isinstance(x, tuple) \
            else x.clone().requires_grad_()
        out.append((xs, None if edge_attr is None else edge_attr.clone().requires_grad_()))
    return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def compare(results, what=""):
    (y1, e1, g1), (y2, e2, g2) = results
    close(y1, y2, *TOL, f"{what} out")
    if e1 is not None:
        assert torch.equal(_dense(e1[0]).long(), _dense(e2[0]).long()), f"{what}: edge_index / adjacency differ"
        close(e1[1], e2[1], *TOL, f"{what} alpha")
    assert g1.keys() == g2.keys(), (sorted(g1), sorted(g2))
    for name in g1:
        if g2[name] is None:
            assert g1[name] is None or not g1[name].any(), f"{what}: grad {name} where PyG has none"
            continue
        close(g1[name], g2[name], *TOL, f"{what} grad {name}")


def _dense(t):
    return t.to_dense() if t.layout != torch.strided else t


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"])
@pytest.mark.parametrize("heads,out_ch,concat", [(1, 5, True), (3, 7, True), (4, 4, False)])
def test_matches_pyg(backend, kind, heads, out_ch, concat, backend_reset):
    n, in_ch = 57, 11
    ei = edge_index(kind, n, 4.2, seed=heads)
    compare(run_both(*pair(in_ch, out_ch, heads=heads, concat=concat), torch.randn(n, in_ch), ei, backend=backend))


@pytest.mark.parametrize("kw", [dict(add_self_loops=False), dict(bias=False), dict(residual=True),
                                dict(negative_slope=0.05, heads=2), dict(dropout=0.5, heads=2)])
def test_options_match_pyg(kw, backend_reset):
    n, in_ch = 40, 6
    ei = edge_index("selfloops", n, 3, seed=1)
    ours, theirs = pair(in_ch, 5, **kw)
    ours.eval(), theirs.eval()  # dropout differs by construction (different RNGs); compare in eval mode
    compare(run_both(ours, theirs, torch.randn(n, in_ch), ei), str(kw))


FILLS = ["mean", "add", "max", "min", "mul", 0.5, torch.tensor([0.1, -0.2, 0.3]), None]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fill", FILLS, ids=lambda f: f"fill={f if not isinstance(f, torch.Tensor) else 'tensor'}")
def test_edge_attr_matches_pyg(fill, backend, backend_reset):
    """edge_dim: the edge term in the score, the self-loops' features from fill_value, with self-loops and
    duplicates in the input; alpha and gradients of edge_attr, lin_edge and att_edge too."""
    n = 31
    ei = edge_index("duplicates", n, 3.5, seed=2)
    ei[:, :4] = torch.arange(4).repeat(2, 1)  # self-loops to remove
    ours, theirs = pair(8, 4, heads=3, edge_dim=3, fill_value=fill)
    compare(run_both(ours, theirs, torch.randn(n, 8), ei, torch.randn(ei.shape[1], 3), backend=backend,
                     attention=True), f"fill={fill}")


@pytest.mark.parametrize("kw", [dict(add_self_loops=False), dict(edge_dim=1, concat=False, residual=True)])
def test_edge_attr_options(kw, backend_reset):
    n = 25
    ei = edge_index("selfloops", n, 3, seed=3)
    dim = kw.get("edge_dim", 2)
    ours, theirs = pair(6, 5, heads=2, **{"edge_dim": 2, **kw})
    ea = torch.randn(ei.shape[1]) if dim == 1 else torch.randn(ei.shape[1], dim)  # a 1-d edge_attr for edge_dim 1
    compare(run_both(ours, theirs, torch.randn(n, 6), ei, ea, attention=True), str(kw))
    # edge_dim set but no edge_attr, and edge_attr given without edge_dim: PyG ignores the missing side
    compare(run_both(ours, theirs, torch.randn(n, 6), ei), "no edge_attr")
    plain = pair(6, 5, heads=2)
    compare(run_both(*plain, torch.randn(n, 6), ei, torch.randn(ei.shape[1], 2)), "edge_attr without edge_dim")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["two lins", "shared lin", "x_dst None", "size", "no loops", "edge_dim"])
def test_bipartite_matches_pyg(case, backend, backend_reset):
    n_src, n_dst = 23, 14
    g = torch.Generator().manual_seed(4)
    ei = torch.stack([torch.randint(0, n_src, (70,), generator=g), torch.randint(0, n_dst, (70,), generator=g)])
    x_src, x_dst = torch.randn(n_src, 6), torch.randn(n_dst, 5)
    kw, extra, ea = dict(heads=2, residual=True), {}, None
    in_ch = (6, 5)
    if case == "shared lin":
        in_ch, x_dst = 6, torch.randn(n_dst, 6)
    elif case == "x_dst None":  # no destination score (and no residual); destinations default to the sources
        ei[1] %= n_dst
        x_dst, kw = None, dict(heads=2)
    elif case == "size":
        extra = dict(size=(n_src, n_dst))
    elif case == "no loops":
        kw["add_self_loops"] = False
    elif case == "edge_dim":
        kw.update(edge_dim=3, fill_value="max")
        ea = torch.randn(70, 3)
    compare(run_both(*pair(in_ch, 4, **kw), (x_src, x_dst), ei, ea, backend=backend, attention=True, **extra), case)


@pytest.mark.parametrize("layout", ["coo", "coo-uncoalesced", "csr"])
@pytest.mark.parametrize("loops", [True, False])
def test_sparse_adjacency_matches_pyg(layout, loops, backend_reset):
    """A torch.sparse adj_t [N_dst, N_src]: PyG's order (with self-loops: removed, re-added, coalesced,
    duplicates merged), the attention weights returned as a sparse tensor of the same layout."""
    if layout == "coo-uncoalesced" and not loops:
        pytest.skip("PyG itself refuses an uncoalesced COO adjacency without self-loops")
    n = 30
    ei = edge_index("duplicates", n, 3, seed=5)
    ei[:, :3] = torch.arange(3).repeat(2, 1)
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.shape[1]), (n, n))
    adj = adj if layout == "coo-uncoalesced" else adj.coalesce()
    adj = adj.to_sparse_csr() if layout == "csr" else adj
    ours, theirs = pair(8, 4, heads=3, add_self_loops=loops)
    compare(run_both(ours, theirs, torch.randn(n, 8), adj, attention=True), f"{layout} loops={loops}")


def test_sparse_values_are_edge_features(backend_reset):
    """A hybrid COO adjacency's 2-d values are the edge features (PyG's MessagePassing reads them so; PyG
    fails on such an adjacency when it adds self-loops or returns attention weights, so neither here)."""
    n = 20
    ei = edge_index("uniform", n, 3, seed=6)
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.randn(ei.shape[1], 2), (n, n, 2)).coalesce()
    ours, theirs = pair(5, 3, heads=2, edge_dim=2, add_self_loops=False)
    x = torch.randn(n, 5)
    close(ours(x, adj), theirs(x, adj), *TOL, "out")
    close(ours(x, adj), ours(x, adj.indices().flip(0), adj.values()), *TOL, "the same as edge_attr")


def test_attention_weights_training_dropout(backend_reset):
    """While training, alpha is after dropout: the op's own mask (replayed from its seed), so out is
    exactly the alpha-weighted sum of the projected sources; reproducible under torch.manual_seed."""
    n = 40
    ei = edge_index("uniform", n, 5, seed=8)
    conv = FusedGATConv(6, 4, heads=2, dropout=0.5, bias=False)
    x = torch.randn(n, 6)
    torch.manual_seed(3)
    out, (lei, alpha) = conv(x, ei, return_attention_weights=True)
    torch.manual_seed(3)
    out2, (_, alpha2) = conv(x, ei, return_attention_weights=True)
    assert torch.equal(out, out2) and torch.equal(alpha, alpha2)
    dropped = (alpha == 0).float().mean().item()
    assert 0.35 < dropped < 0.65, dropped
    h = conv.lin(x).view(n, 2, 4)
    want = torch.zeros(n, 2, 4).index_add_(0, lei[1], alpha[:, :, None] * h[lei[0]])
    close(out, want.reshape(n, 8), 1e-5, 1e-5, "out = sum alpha h")
    conv.eval()
    _, (_, alpha_eval) = conv(x, ei, return_attention_weights=True)
    sums = torch.zeros(n, 2).index_add_(0, lei[1], alpha_eval)
    close(sums, torch.ones(n, 2), 1e-6, 1e-6, "softmax rows sum to 1")


def test_state_dict_both_ways():
    for args, kw in (((8, 3), dict(heads=2, residual=True)), (((6, 5), 3), dict(heads=2, edge_dim=4)),
                     ((7, 2), dict(edge_dim=1, concat=False, bias=False))):
        ours, theirs = pair(*args, **kw)
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: v.shape for k, v in theirs.state_dict().items()}
        torch.manual_seed(1)
        fresh_pyg = pyg.GATConv(*args, **kw)
        fresh_pyg.load_state_dict(ours.state_dict())  # ours -> PyG
        for k, v in theirs.state_dict().items():
            assert torch.equal(fresh_pyg.state_dict()[k], v), k


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
    assert conv.graph(other, 20, 21, 20) is not conv.graph(other, 20, 20, 20)  # other sizes: rebuilt
    c2 = conv.graph(other, 20, 20, 20)
    other[0, 0] = (other[0, 0] + 1) % 20  # in-place change bumps the version: rebuilt
    c3 = conv.graph(other, 20, 20, 20)
    assert c3 is not c2
    assert not torch.equal(c3.indices, c2.indices) or not torch.equal(c3.indptr, c2.indptr)


def test_edge_attr_gathered_each_call_through_the_cached_permutation():
    """The CSR is built once; a new edge_attr (another tensor, same graph) is gathered through it."""
    n = 25
    ei = edge_index("uniform", n, 3, seed=9)
    ours, theirs = pair(5, 3, heads=2, edge_dim=2)
    x = torch.randn(n, 5)
    g = None
    for step in range(3):
        ea = torch.randn(ei.shape[1], 2)
        close(ours(x, ei, ea), theirs(x, ei, ea), *TOL, f"step {step}")
        g = g or ours._graph
        assert ours._graph is g


class SparseTensor:  # stands for torch_sparse.SparseTensor (not installed here)
    pass


@pytest.mark.parametrize("call,exc,match", [
    (lambda c, x, ei: c(torch.randn(5, 3), ei), ValueError, "x must have shape"),
    (lambda c, x, ei: c((x, torch.randn(5, 3)), ei), ValueError, "x_dst must have shape"),
    (lambda c, x, ei: c((x,), ei), TypeError, "pair"),
    (lambda c, x, ei: c(x, torch.tensor([[0, 7], [1, 2]])), ValueError, "outside the graph"),
    (lambda c, x, ei: c(x, ei.float()), TypeError, "int64 or int32"),
    (lambda c, x, ei: c(x, ei[:1]), ValueError, "shape \\[2, E\\]"),
    (lambda c, x, ei: c(x, ei, torch.randn(ei.shape[1] + 1, 2)), ValueError, "edge_attr must have shape"),
    (lambda c, x, ei: c(x, ei, torch.randn(ei.shape[1], 3)), ValueError, "edge_attr must have shape"),
    (lambda c, x, ei: c(x, SparseTensor()), TypeError, "SparseTensor is not supported"),
    (lambda c, x, ei: c(x, torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.shape[1]), (5, 5)),
                        torch.randn(ei.shape[1], 2)), ValueError, "edge_attr cannot go with a sparse"),
    (lambda c, x, ei: c(x, ei, size=(6, 5)), ValueError, "size says"),
])
def test_bad_input(call, exc, match):
    conv = FusedGATConv(4, 3, edge_dim=2)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    with pytest.raises(exc, match=match):
        call(conv, torch.randn(5, 4), ei)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(in_channels=-1), ValueError, "no lazy -1"),
    (dict(in_channels=(4, 0)), ValueError, "positive int"),
    (dict(aggr="mean"), TypeError, "MessagePassing options"),
    (dict(dropout=1.0), ValueError, "dropout must be in"),
    (dict(edge_dim=0), ValueError, "edge_dim must be"),
    (dict(fill_value="median"), ValueError, "fill_value must be"),
])
def test_bad_constructor(kw, exc, match):
    args = dict(in_channels=4, out_channels=3)
    args.update(kw)
    with pytest.raises(exc, match=match):
        FusedGATConv(**args)


PLANETOID = os.environ.get("SLIMOPS_PLANETOID", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                             "data", "planetoid"))


def test_cora_matches_pyg(backend_reset):
    from slimops.data.planetoid import find_raw_dir, load_planetoid

    try:
        find_raw_dir(PLANETOID, "cora")
    except FileNotFoundError:
        pytest.skip(f"Cora raw files not under {PLANETOID} (optional real-data check; set SLIMOPS_PLANETOID)")
    d = load_planetoid(PLANETOID, "cora")
    ours, theirs = pair(d.x.shape[1], 8, heads=8)
    compare(run_both(ours, theirs, d.x, d.edge_index, attention=True), "cora")
