"""The GAT family's grid for ``slimops check`` (:mod:`slimops.check`): forward, backward and merge against
the reference.

``gat_forward`` and ``gat_backward`` per feature dtype, on random graphs in CSR
by destination: uniform, isolated destinations, self-loops, duplicate edges,
one node, no edge at all; heads x channels (1, 1), (3, 7), (2, 33); int32 and
int64 indices; attention dropout with a seed above 2^32 and an offset; large
logits; NaN and +Inf scores and a destination whose logits are all -Inf (the
reference gives NaN there). Both sides compute in fp32 and differ in summation
order and, for bf16 / fp16, in the final rounding, hence the tolerances of
:data:`TOL` (the test suite's, ``tests/gat``). ``gat_merge`` has only its
reference: merging the partial aggregations over two blocks of source nodes
must give the whole graph's ``(out, lse)``. Forward and backward again with a
per-edge score ``a_edge`` [E, H] (GATConv's ``edge_attr`` term) on four graphs;
``gat_scores`` and its backward (the layer's node scores, K attention vectors)
on shapes down to one node and zero nodes.
"""

from __future__ import annotations

import torch

from .._backend import use_backend
from ..check import Case
from .api import csr_from_edge_index

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (atol, rtol) of the forward output and of the gradients by feature dtype; lse is fp32 on every dtype.
TOL = {torch.float32: ((2e-6, 2e-5), (1e-5, 1e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (2e-2, 2e-2)),
       torch.float16: ((2e-3, 2e-3), (4e-3, 4e-3))}
LSE_TOL = (1e-5, 1e-5)
SLOPE = 0.2


def graph(kind: str, n_src: int, n_dst: int, avg_deg: float, seed: int, index_dtype=torch.int32):
    """(indptr, indices) of a random graph; kinds: uniform, isolated (a third of the destinations without
    in-edges), selfloops (one per node, some two), duplicates, empty (no edge)."""
    g = torch.Generator().manual_seed(seed)
    e = 0 if kind == "empty" else max(1, int(n_dst * avg_deg))
    src = torch.randint(0, n_src, (e,), generator=g)
    dst = torch.randint(0, n_dst, (e,), generator=g)
    if kind == "isolated":
        keep = dst % 3 != 0
        src, dst = src[keep], dst[keep]
    elif kind == "selfloops":
        loops = torch.arange(min(n_src, n_dst))
        src, dst = torch.cat([src, loops, loops[::2]]), torch.cat([dst, loops, loops[::2]])
    elif kind == "duplicates":
        src, dst = torch.cat([src, src[: e // 2]]), torch.cat([dst, dst[: e // 2]])
    return csr_from_edge_index(torch.stack([src, dst]), n_dst, num_src=n_src, index_dtype=index_dtype)


def features(n_src, n_dst, heads, channels, dtype, seed, scale=1.0, special=False):
    """(h, a_src, a_dst); with ``special``: a NaN and a +Inf source score and one destination at -Inf."""
    g = torch.Generator().manual_seed(seed + 1000)
    h = torch.randn(n_src, heads, channels, generator=g)
    a_src = scale * torch.randn(n_src, heads, generator=g)
    a_dst = scale * torch.randn(n_dst, heads, generator=g)
    if special:
        a_src[1, 0] = float("nan")
        a_src[2, -1] = float("inf")
        a_dst[3, :] = float("-inf")
    return h.to(dtype), a_src.to(dtype), a_dst.to(dtype)


GRAPHS = [  # (label, kind, n_src, n_dst, heads, channels, index dtype, dropout, scale, special)
    ("uniform", "uniform", 53, 47, 3, 7, torch.int32, 0.0, 1.0, False),
    ("isolated", "isolated", 31, 29, 1, 1, torch.int32, 0.0, 1.0, False),
    ("selfloops", "selfloops", 30, 30, 2, 33, torch.int64, 0.0, 1.0, False),
    ("duplicates", "duplicates", 30, 30, 3, 7, torch.int32, 0.0, 1.0, False),
    ("one node", "selfloops", 1, 1, 2, 5, torch.int32, 0.0, 1.0, False),
    ("no edge", "empty", 6, 5, 2, 3, torch.int64, 0.0, 1.0, False),
    ("dropout 0.3", "uniform", 25, 24, 3, 5, torch.int32, 0.3, 1.0, False),
    ("large logits", "duplicates", 30, 30, 2, 4, torch.int32, 0.0, 40.0, False),
    ("nan/inf scores", "uniform", 20, 20, 2, 3, torch.int32, 0.0, 1.0, True),
    ("300 nodes", "uniform", 300, 300, 4, 8, torch.int64, 0.0, 1.0, False),
]
DROPOUT_SEED, DROPOUT_OFFSET = 2**40 + 17, 3
LARGE = 32  # destinations: larger graphs are left out in Triton's interpreter (a program per destination)


def _make(spec, dtype):
    label, kind, n_src, n_dst, heads, channels, index_dtype, p, scale, special = spec

    def make(device):
        indptr, indices = graph(kind, n_src, n_dst, 6.0, seed=n_src * 7 + heads, index_dtype=index_dtype)
        h, a_src, a_dst = features(n_src, n_dst, heads, channels, dtype, n_src, scale, special)
        return tuple(t.to(device) for t in (h, a_src, a_dst, indptr, indices))

    return make


def _forward_case(spec, dtype):
    p = spec[7]
    return Case("gat_forward", _make(spec, dtype),
                lambda *a: torch.ops.slimops.gat_forward(*a, SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET), dtype,
                spec[0], tol=[TOL[dtype][0], LSE_TOL], large=spec[3] > LARGE)


def _backward_case(spec, dtype):
    p = spec[7]
    make_fwd = _make(spec, dtype)

    def make(device):
        h, a_src, a_dst, indptr, indices = make_fwd("cpu")
        with use_backend("reference"):  # the forward's out and lse, as autograd saves them (the same on every device)
            out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, SLOPE, p, DROPOUT_SEED,
                                                     DROPOUT_OFFSET)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
        return tuple(t.to(device) for t in (grad, h, a_src, a_dst, indptr, indices, out, lse))

    return Case("gat_backward", make,
                lambda *a: torch.ops.slimops.gat_backward(*a, SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET), dtype,
                spec[0], tol=TOL[dtype][1], large=spec[3] > LARGE)


EDGE_GRAPHS = ("uniform", "duplicates", "dropout 0.3", "no edge")  # also run with a per-edge score a_edge [E, H]


def _edge_score(indices, heads: int, dtype):
    g = torch.Generator().manual_seed(indices.numel() + heads)
    return torch.randn(indices.numel(), heads, generator=g).to(dtype)


def _edge_forward_case(spec, dtype):
    p, make_fwd = spec[7], _make(spec, dtype)

    def make(device):
        args = make_fwd("cpu")
        return tuple(t.to(device) for t in (*args, _edge_score(args[4], spec[4], dtype)))

    return Case("gat_forward", make,
                lambda h, s, d, ptr, idx, ae: torch.ops.slimops.gat_forward(h, s, d, ptr, idx, SLOPE, p, DROPOUT_SEED,
                                                                           DROPOUT_OFFSET, ae),
                dtype, spec[0] + ", edge score", tol=[TOL[dtype][0], LSE_TOL], large=spec[3] > LARGE)


def _edge_backward_case(spec, dtype):
    p, make_fwd = spec[7], _make(spec, dtype)

    def make(device):
        h, a_src, a_dst, indptr, indices = make_fwd("cpu")
        ae = _edge_score(indices, spec[4], dtype)
        with use_backend("reference"):
            out, lse = torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, SLOPE, p, DROPOUT_SEED,
                                                     DROPOUT_OFFSET, ae)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
        return tuple(t.to(device) for t in (grad, h, a_src, a_dst, indptr, indices, out, lse, ae))

    def call(*a):
        return torch.ops.slimops.gat_backward(*a[:8], SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET, a[8])

    return Case("gat_backward", make, call, dtype, spec[0] + ", edge score", tol=TOL[dtype][1],
                large=spec[3] > LARGE)


SCORE_SHAPES = ((1, 1, 1, 1), (2, 53, 3, 7), (2, 300, 4, 33), (1, 0, 2, 5))  # (K, N, heads, channels)


def _scores_case(shape, dtype, backward: bool):
    k, n, heads, channels = shape

    def make(device):
        g = torch.Generator().manual_seed(n * heads + channels)
        h = torch.randn(n, heads, channels, generator=g).to(dtype)
        att = torch.randn(k, heads, channels, generator=g).to(dtype)
        if not backward:
            return h.to(device), att.to(device)
        grad = torch.randn(k, n, heads, generator=g).to(dtype)
        grad_h = torch.randn(n, heads, channels, generator=g).to(dtype)
        return tuple(t.to(device) for t in (grad, h, att, grad_h))

    label = f"K {k}, {n} nodes, {heads}x{channels}"
    if backward:
        return Case("gat_scores_backward", make, lambda *a: torch.ops.slimops.gat_scores_backward(*a), dtype, label,
                    tol=TOL[dtype][1])
    return Case("gat_scores", make, lambda h, att: torch.ops.slimops.gat_scores(h, att), dtype, label,
                tol=TOL[dtype][0])


def _blocks(h, a_src, indptr, indices, cut: int):
    """The CSR of the edges from sources [0, cut) and [cut, N_src), indices local to each block."""
    n_dst = indptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(n_dst, device=indptr.device), (indptr[1:] - indptr[:-1]).long())
    col = indices.long()
    out = []
    for lo, hi in ((0, cut), (cut, h.shape[0])):
        keep = (col >= lo) & (col < hi)
        counts = torch.bincount(row[keep], minlength=n_dst)
        ptr = torch.zeros(n_dst + 1, dtype=torch.int64, device=indptr.device)
        torch.cumsum(counts, 0, out=ptr[1:])
        out.append((h[lo:hi], a_src[lo:hi], ptr.to(indptr.dtype), (col[keep] - lo).to(indices.dtype)))
    return out


def _merge_case(spec, dtype):
    def merged(h, a_src, a_dst, indptr, indices):
        parts = [torch.ops.slimops.gat_forward(hb, sb, a_dst, pb, ib, SLOPE, 0.0, 0, 0)
                 for hb, sb, pb, ib in _blocks(h, a_src, indptr, indices, h.shape[0] // 3)]
        return torch.ops.slimops.gat_merge(torch.stack([o for o, _ in parts]), torch.stack([l for _, l in parts]))

    def whole(*args):
        with use_backend("reference"):
            return torch.ops.slimops.gat_forward(*args, SLOPE, 0.0, 0, 0)

    atol, rtol = TOL[dtype][0]  # bf16 / fp16: the partial outputs are rounded before the merge, twice the error
    return Case("gat_merge", _make(spec, dtype), merged, dtype, f"{spec[0]}, 2 source blocks",
                tol=[(2 * atol, 2 * rtol), LSE_TOL], oracle=whole)


def cases() -> list:
    out = []
    for dtype in DTYPES:
        out += [_forward_case(spec, dtype) for spec in GRAPHS]
        out += [_backward_case(spec, dtype) for spec in GRAPHS]
        out += [_merge_case(spec, dtype) for spec in GRAPHS if spec[7] == 0 and not spec[9]]
        out += [f(spec, dtype) for spec in GRAPHS if spec[0] in EDGE_GRAPHS
                for f in (_edge_forward_case, _edge_backward_case)]
        out += [_scores_case(shape, dtype, b) for shape in SCORE_SHAPES for b in (False, True)]
    return out
