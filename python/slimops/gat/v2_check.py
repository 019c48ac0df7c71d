"""The GATv2 grid for ``slimops check`` (:mod:`slimops.check`): ``gatv2_forward`` and ``gatv2_backward``
against the reference.

Per feature dtype, on the GAT grid's random graphs (:func:`slimops.gat.check.graph`: uniform, isolated
destinations, self-loops, duplicate edges, one node, no edge), heads x channels from (1, 1) to (2, 33),
edge features of width 0 (no edge term) and 3, int32 and int64 indices, attention dropout with a seed above
2^32, large features. Both sides compute in fp32 and differ in summation order (and, for bf16 / fp16, the
final rounding): the tolerances are the test suite's (``tests/gat/v2_inputs.py``).
"""

from __future__ import annotations

import torch

from .._backend import use_backend
from ..check import Case
from .check import DROPOUT_OFFSET, DROPOUT_SEED, LARGE, LSE_TOL, SLOPE, graph

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TOL = {torch.float32: ((5e-6, 5e-5), (2e-5, 2e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (3e-2, 3e-2)),
       torch.float16: ((2e-3, 2e-3), (6e-3, 6e-3))}
GRAPHS = [  # (label, kind, n_src, n_dst, heads, channels, edge_dim, index dtype, dropout, scale)
    ("uniform", "uniform", 53, 47, 3, 7, 0, torch.int32, 0.0, 1.0),
    ("uniform, edge features", "uniform", 53, 47, 3, 7, 3, torch.int64, 0.0, 1.0),
    ("isolated", "isolated", 31, 29, 1, 1, 3, torch.int32, 0.0, 1.0),
    ("selfloops", "selfloops", 30, 30, 2, 33, 0, torch.int64, 0.0, 1.0),
    ("duplicates", "duplicates", 30, 30, 3, 7, 3, torch.int32, 0.0, 1.0),
    ("one node", "selfloops", 1, 1, 2, 5, 3, torch.int32, 0.0, 1.0),
    ("no edge", "empty", 6, 5, 2, 3, 3, torch.int64, 0.0, 1.0),
    ("dropout 0.3", "uniform", 25, 24, 3, 5, 3, torch.int32, 0.3, 1.0),
    ("large features", "duplicates", 30, 30, 2, 4, 0, torch.int32, 0.0, 20.0),
    ("300 nodes", "uniform", 300, 300, 4, 8, 3, torch.int64, 0.0, 1.0),
]


def _make(spec, dtype):
    label, kind, n_src, n_dst, heads, channels, edge_dim, index_dtype, p, scale = spec

    def make(device):
        indptr, indices = graph(kind, n_src, n_dst, 6.0, seed=n_src * 7 + heads, index_dtype=index_dtype)
        g = torch.Generator().manual_seed(n_src + 2000)
        xl = scale * torch.randn(n_src, heads, channels, generator=g)
        xr = scale * torch.randn(n_dst, heads, channels, generator=g)
        att = torch.randn(heads, channels, generator=g) / channels ** 0.5
        edge_attr = torch.randn(indices.numel(), edge_dim, generator=g)
        w_edge = torch.randn(heads * channels, edge_dim, generator=g) / max(edge_dim, 1) ** 0.5
        feats = tuple(t.to(dtype) for t in (xl, xr, att, edge_attr, w_edge))
        return tuple(t.to(device) for t in (*feats, indptr, indices))

    return make


def _forward_case(spec, dtype):
    p = spec[8]
    return Case("gatv2_forward", _make(spec, dtype),
                lambda *a: torch.ops.slimops.gatv2_forward(*a, SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET), dtype,
                spec[0], tol=[TOL[dtype][0], LSE_TOL], large=spec[3] > LARGE)


def _backward_case(spec, dtype):
    p, make_fwd = spec[8], _make(spec, dtype)

    def make(device):
        args = make_fwd("cpu")
        with use_backend("reference"):  # the forward's out and lse, as autograd saves them
            out, lse = torch.ops.slimops.gatv2_forward(*args, SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET)
        grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
        return tuple(t.to(device) for t in (grad, *args, out, lse))

    return Case("gatv2_backward", make,
                lambda *a: torch.ops.slimops.gatv2_backward(*a, SLOPE, p, DROPOUT_SEED, DROPOUT_OFFSET), dtype,
                spec[0], tol=TOL[dtype][1], large=spec[3] > LARGE)


def cases() -> list:
    return [f(spec, dtype) for dtype in DTYPES for f in (_forward_case, _backward_case) for spec in GRAPHS]
