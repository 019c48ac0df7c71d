"""Fuzzing the GAT ops against the reference with hypothesis: random graphs (one node, zero edges, isolated
nodes, self-loops, duplicates), shapes, every feature and index dtype, dropout, an optional edge score, and edge
values (NaN, +-Inf, +-0, subnormals, the dtype's largest value) in the scores, features and gradients.

* ``gat_forward`` / ``gat_backward``: every backend that runs here (C++ on the CPU, Triton in its interpreter on
  tiny graphs, and with a GPU the CUDA C++ and Triton kernels) against the reference on the same inputs: the same
  NaN positions and the same infinities, finite values within a tolerance scaled by the inputs' magnitude
  (fp32 1e-5, fp16 4e-3, bf16 2e-2: the backends sum in another order, the CPU kernels use their own exp).
* ``gat_merge``: the merge of partial aggregations (a random split of the source nodes into blocks, each run on
  a backend) against the whole graph's reference forward. Exception, by construction: a block in which every
  score of a row is -inf makes that row NaN (its own softmax is undefined), whereas the whole row's softmax gives
  those edges weight 0; -inf scores are left out of this property.

CI runs a few dozen examples per test (derandomized); a long run sets ``SLIMOPS_FUZZ_EXAMPLES`` (random, e.g.
``SLIMOPS_FUZZ_EXAMPLES=10000 pytest tests/gat/test_gat_fuzz.py --hypothesis-show-statistics``).
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import slimops
from slimops._backend import native_module, triton_available, triton_interpret

LONG = int(os.environ.get("SLIMOPS_FUZZ_EXAMPLES", "0"))


def fuzz(ci_examples: int):
    return settings(max_examples=LONG or ci_examples, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


DTYPES = [torch.float32, torch.bfloat16, torch.float16]
ATOL = {torch.float32: 1e-5, torch.float16: 4e-3, torch.bfloat16: 2e-2}


def _backends():
    out = []
    if native_module("_C") is not None:
        out.append(pytest.param("cpu", "native", 40, id="cpu-native"))
    if triton_available() and triton_interpret() and not torch.cuda.is_available():
        out.append(pytest.param("cpu", "triton", 6, id="cpu-triton-interpreter"))
    if torch.cuda.is_available():
        if native_module("_C_cuda") is not None:
            out.append(pytest.param("cuda", "native", 40, id="cuda-native"))
        if triton_available():
            out.append(pytest.param("cuda", "triton", 40, id="cuda-triton"))
    return out or [pytest.param("cpu", "native", 0, marks=pytest.mark.skip(reason="no compiled GAT backend here"))]


BACKENDS = _backends()


def _special(dtype):
    info = torch.finfo(dtype)
    return [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, info.tiny / 4, -info.tiny / 2, info.max, -info.max]


@st.composite
def values(draw, shape, dtype, special: bool, big: bool = False, allow_neg_inf: bool = True):
    """A tensor of ``shape``: normal values scaled by 10^k, a few entries replaced by edge values (scores may
    take the dtype's max; features and gradients do not, so that no finite sum overflows in one summation
    order only)."""
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1.0, 0.01, 30.0]))
    t = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    if special and t.numel():
        n = draw(st.integers(0, min(3, t.numel())))
        choices = [v for v in _special(dtype) if big or abs(v) != torch.finfo(dtype).max]
        if not allow_neg_inf:
            choices = [v for v in choices if v != -float("inf")]
        flat = t.view(-1)
        for _ in range(n):
            flat[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from(choices))
    return t.to(dtype)


@st.composite
def graphs(draw, max_nodes: int, max_edges: int):
    n_src = draw(st.integers(1, max_nodes))
    n_dst = draw(st.integers(1, max_nodes))
    n_edges = draw(st.integers(0, max_edges))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_src - 1), st.integers(0, n_dst - 1)), min_size=n_edges,
                          max_size=n_edges))
    if pairs and draw(st.booleans()):  # duplicates
        pairs += pairs[:draw(st.integers(1, len(pairs)))]
    if draw(st.booleans()):  # self-loops
        pairs += [(i, i) for i in range(min(n_src, n_dst)) if draw(st.booleans())]
    index_dtype = draw(st.sampled_from([torch.int32, torch.int64]))
    ei = torch.tensor(pairs, dtype=torch.int64).view(-1, 2).t()
    indptr, indices = slimops.gat.csr_from_edge_index(ei, n_dst, num_src=n_src, index_dtype=index_dtype)
    return n_src, n_dst, indptr, indices


@st.composite
def cases(draw, max_nodes: int, max_edges: int, special: bool = True, allow_neg_inf: bool = True):
    n_src, n_dst, indptr, indices = draw(graphs(max_nodes, max_edges))
    heads = draw(st.sampled_from([1, 2, 3, 8, 16]))  # 8 and 16: the C++ kernels' edge-major path on vectors of heads
    channels = draw(st.sampled_from([1, 2, 3, 5, 7, 8, 9, 16]))  # 8 and 16: their compiled channel counts
    dtype = draw(st.sampled_from(DTYPES))
    sp = draw(st.booleans()) and special
    kw = dict(dtype=dtype, special=sp, allow_neg_inf=allow_neg_inf)
    h = draw(values((n_src, heads, channels), **kw))
    a_src = draw(values((n_src, heads), big=True, **kw))
    a_dst = draw(values((n_dst, heads), big=True, **kw))
    a_edge = draw(values((indices.numel(), heads), big=True, **kw)) if draw(st.booleans()) else None
    grad = draw(values((n_dst, heads, channels), **kw))
    p = draw(st.sampled_from([0.0, 0.0, 0.3, 0.7]))
    seed = draw(st.integers(-2**40, 2**40))
    offset = draw(st.sampled_from([0, 5, 2**32 - 3]))
    slope = draw(st.sampled_from([0.2, 0.01, 1.0]))
    return dict(h=h, a_src=a_src, a_dst=a_dst, indptr=indptr, indices=indices, a_edge=a_edge, grad=grad, p=p,
                seed=seed, offset=offset, slope=slope)


def _scale(*ts):
    """The largest finite magnitude among the inputs (at least 1): finite errors scale with it."""
    m = 1.0
    for t in ts:
        if t is not None and t.numel():
            f = t.float()
            f = f[torch.isfinite(f)]
            if f.numel():
                m = max(m, f.abs().max().item())
    return m


def agree(actual, expected, atol, what):
    a, e = actual.detach().float().cpu(), expected.detach().float().cpu()
    assert a.shape == e.shape and actual.dtype == expected.dtype, f"{what}: {actual.dtype} {a.shape} vs " \
                                                                 f"{expected.dtype} {e.shape}"
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    assert torch.equal(nan_a, nan_e), f"{what}: NaN at {(nan_a != nan_e).nonzero()[:5].tolist()}"
    inf_e = torch.isinf(e)
    assert torch.equal(torch.isinf(a), inf_e) and torch.equal(a[inf_e], e[inf_e]), f"{what}: infinities differ"
    fin = ~nan_e & ~inf_e
    torch.testing.assert_close(a[fin], e[fin], atol=atol, rtol=atol, msg=lambda m: f"{what}: {m}")


def _run(device, backend, c):
    args = [c[k].to(device) for k in ("h", "a_src", "a_dst", "indptr", "indices")]
    a_edge = None if c["a_edge"] is None else c["a_edge"].to(device)
    sc = (c["slope"], c["p"], c["seed"], c["offset"])
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gat_forward(*args, *sc, a_edge)
    with slimops.use_backend("reference"):
        r_out, r_lse = torch.ops.slimops.gat_forward(*args, *sc, a_edge)
    return args, a_edge, sc, (out, lse), (r_out, r_lse)


@pytest.mark.parametrize("device,backend,ci", BACKENDS)
def test_fuzz_forward(device, backend, ci, backend_reset):
    small = backend == "triton" and device == "cpu"

    @fuzz(ci)
    @given(cases(4 if small else 12, 8 if small else 40))
    def check(c):
        _, _, _, (out, lse), (r_out, r_lse) = _run(device, backend, c)
        atol = ATOL[c["h"].dtype]
        agree(out, r_out, atol * _scale(c["h"]), "out")
        agree(lse, r_lse, 1e-5 * _scale(r_lse), "lse")

    check()


@pytest.mark.parametrize("device,backend,ci", BACKENDS)
def test_fuzz_backward(device, backend, ci, backend_reset):
    small = backend == "triton" and device == "cpu"

    @fuzz(ci)
    @given(cases(4 if small else 12, 8 if small else 40))
    def check(c):
        args, a_edge, sc, (out, lse), _ = _run(device, backend, c)
        g = c["grad"].to(device)
        with slimops.use_backend(backend):
            got = torch.ops.slimops.gat_backward(g, *args, out, lse, *sc, a_edge)
        with slimops.use_backend("reference"):  # the same forward results in: the gradient ops alone compared
            want = torch.ops.slimops.gat_backward(g, *args, out, lse, *sc, a_edge)
        s = _scale(c["h"]) * _scale(c["grad"]) * (1 + c["h"].shape[2])
        atol = ATOL[c["h"].dtype]
        for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst", "grad_a_edge"), got, want):
            agree(a, b, atol * (s if name != "grad_h" else _scale(c["grad"])) * 4, name)

    check()


@pytest.mark.parametrize("device,backend,ci", BACKENDS)
def test_fuzz_merge(device, backend, ci, backend_reset):
    """merge(partial forwards over blocks of source nodes) = the whole graph's forward (out and lse)."""
    small = backend == "triton" and device == "cpu"

    @fuzz(max(ci // 2, 3))
    @given(cases(4 if small else 12, 8 if small else 40, allow_neg_inf=False), st.data())
    def check(c, data):
        # A partial's lse = m + log(s) holds log(s) only while ulp(m) is below it: past |logit| ~ 2^24 the
        # partials lose their edge counts (gat.merge's docstring), so the property stops at 2^20.
        assume(_scale(c["a_src"]) + _scale(c["a_dst"]) + _scale(c["a_edge"]) < 2.0**20)
        # +-Inf features: an edge weight that underflows to 0 in the whole row (0 * Inf = NaN) is a tiny
        # positive weight inside its block (Inf), so Inf in h is left to the forward and backward properties
        c["h"] = torch.where(torch.isinf(c["h"]), torch.zeros_like(c["h"]), c["h"])
        n_src = c["h"].shape[0]
        cuts = sorted(set(data.draw(st.lists(st.integers(1, max(n_src - 1, 1)), max_size=3))) - {n_src})
        bounds = [0, *cuts, n_src]
        indptr, indices = c["indptr"], c["indices"].long()
        row = torch.repeat_interleave(torch.arange(indptr.numel() - 1), indptr.diff().long())
        outs, lses = [], []
        sc = (c["slope"], c["p"], c["seed"])
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            keep = ((indices >= lo) & (indices < hi)).nonzero().flatten()   # CSR positions of the block, in order
            ip = torch.zeros_like(indptr)
            ip[1:] = torch.bincount(row[keep], minlength=indptr.numel() - 1).cumsum(0)
            ae = None if c["a_edge"] is None else c["a_edge"][keep].to(device)
            with slimops.use_backend(backend):
                # a block's dropout counters: its positions in the whole CSR are not contiguous, so compare
                # without dropout (the counters of partials are the caller's, see sequential_aggregate)
                o, l = slimops.gat.partial_forward(c["h"][lo:hi].to(device), c["a_src"][lo:hi].to(device),
                                                   c["a_dst"].to(device), ip.to(device),
                                                   (indices[keep] - lo).to(indptr.dtype).to(device), sc[0], 0.0,
                                                   sc[2], 0, ae)
            outs.append(o)
            lses.append(l)
        out, lse = slimops.gat.merge(outs, lses)
        with slimops.use_backend("reference"):
            r_out, r_lse = torch.ops.slimops.gat_forward(c["h"], c["a_src"], c["a_dst"], indptr, c["indices"], sc[0],
                                                         0.0, 0, 0, c["a_edge"])
        atol = ATOL[c["h"].dtype] * 2  # a partial is rounded to the dtype before the merge
        agree(out, r_out, atol * _scale(c["h"]), "merged out")
        agree(lse, r_lse, 1e-5 * _scale(r_lse), "merged lse")

    check()


@pytest.mark.parametrize("device,backend,ci", BACKENDS)
@pytest.mark.parametrize("dtype,a_dst,slope", [(torch.float32, -3.4028e38, 0.2), (torch.bfloat16, -3.3895e38, 0.01),
                                               (torch.float32, 3.4028e38, 0.2)])
def test_backward_scores_near_float_max(device, backend, ci, dtype, a_dst, slope, backend_reset):
    """Found by the long fuzz run: a score z near the float maximum, where half an ulp of leaky(z) is ~1e30.
    The backward's alpha = exp(leaky(z) - lse) must round leaky(z) as the forward did (not fuse z * slope - lse
    into one FMA), or alpha becomes 0 or Inf instead of 1 on a single edge."""
    h = torch.tensor([[[1.5410]], [[-0.2934]]]).to(dtype)
    c = dict(h=h, a_src=torch.tensor([[1.5410], [-0.2934]]).to(dtype), a_dst=torch.tensor([[a_dst]]).to(dtype),
             indptr=torch.tensor([0, 1], dtype=torch.int32), indices=torch.tensor([0], dtype=torch.int32),
             a_edge=None, grad=torch.tensor([[[1.5410]]]).to(dtype), p=0.0, seed=0, offset=0, slope=slope)
    args, a_edge, sc, (out, lse), _ = _run(device, backend, c)
    g = c["grad"].to(device)
    with slimops.use_backend(backend):
        got = torch.ops.slimops.gat_backward(g, *args, out, lse, *sc, a_edge)
    with slimops.use_backend("reference"):
        want = torch.ops.slimops.gat_backward(g, *args, out, lse, *sc, a_edge)
    assert got[0][0].float().item() == pytest.approx(c["grad"].float().item(), rel=1e-2)  # alpha = 1
    s = _scale(c["h"]) * _scale(c["grad"]) * 2
    for name, a, b in zip(("grad_h", "grad_a_src", "grad_a_dst"), got, want):
        agree(a, b, ATOL[dtype] * 4 * s, name)


def test_merge_of_equal_scores_near_float_max(backend_reset):
    """Found by the long fuzz run: two partials whose lse is the same value near the float maximum. lse + log(2)
    rounds back to lse, so weights exp(lse_p - lse) would be 1 each; normalised by their sum they are 1/2."""
    outs = torch.tensor([[[[1.5410]]], [[[-0.2934]]]])
    lses = torch.full((2, 1, 1), 3.4028e38)
    out, lse = slimops.gat.merge(list(outs), list(lses))
    assert out.item() == pytest.approx((1.5410 - 0.2934) / 2, rel=1e-6)
    assert lse.item() == pytest.approx(3.4028e38, rel=1e-6)
    out, lse = slimops.gat.merge([torch.zeros(1, 1, 2)] * 2, [torch.full((1, 1), float("-inf"))] * 2)
    assert torch.equal(out, torch.zeros(1, 1, 2)) and lse.item() == float("-inf")  # no edge in any partial
