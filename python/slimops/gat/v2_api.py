"""Python API of fused GATv2 attention over the ``torch.ops.slimops.gatv2_*`` ops.

Partial aggregation over blocks of source nodes works as for the GAT op: each block's
``(out, lse)`` from :func:`gatv2_partial_forward` merges with :func:`slimops.gat.merge` (the same
``gat_merge`` op, unchanged: both ops produce a normalised partial output and its log-sum-exp), and
:func:`gatv2_partial_backward` with the merged output, its gradient and the merged lse gives the
block's exact gradients (grad_xr, grad_att and grad_w_edge are summed over blocks).
:func:`gatv2_sequential_aggregate` is the differentiable whole (SAR: one block at a time).
"""

from __future__ import annotations

from typing import Optional

import torch

from .._backend import current_backend, use_backend
from . import eager
from .api import draw_seed, merge


def _edge_args(xl, edge_attr, w_edge, n_edges):
    """(edge_attr [E, D], w_edge [H*C, D]); zero-width tensors when there is no edge term."""
    if (edge_attr is None) != (w_edge is None):
        raise ValueError("edge_attr and w_edge must be given together (or neither)")
    if edge_attr is None:
        hc = xl.shape[1] * xl.shape[2] if xl.dim() == 3 else 0
        return xl.new_empty(n_edges, 0), xl.new_empty(hc, 0)
    return edge_attr, w_edge


def gatv2_attention(xl, xr, att, indptr, indices, edge_attr=None, w_edge=None, negative_slope: float = 0.2,
                    dropout: float = 0.0, training: bool = True, seed: Optional[int] = None,
                    offset: int = 0) -> torch.Tensor:
    """out [N_dst, H, C]: GATv2 attention aggregation of ``xl`` [N_src, H, C] over the CSR graph.

    ``xr`` [N_dst, H, C] are the destination projections, ``att`` [H, C] the attention vector,
    ``edge_attr`` [E, D] (CSR order) and ``w_edge`` [H*C, D] the optional edge term. Differentiable
    in every float input; keeps only a per-node log-sum-exp for backward. Attention dropout applies
    when ``training`` and ``dropout > 0``; its seed is drawn from torch's generator unless given.
    """
    p = float(dropout) if training else 0.0
    if p > 0 and seed is None:
        seed = draw_seed()
    edge_attr, w_edge = _edge_args(xl, edge_attr, w_edge, indices.shape[0] if indices.dim() else 0)
    return eager.attention_v2(xl, xr, att, edge_attr, w_edge, indptr, indices, float(negative_slope), p,
                              int(seed or 0), int(offset))[0]


def gatv2_partial_forward(xl, xr, att, indptr, indices, edge_attr=None, w_edge=None, negative_slope: float = 0.2,
                          dropout: float = 0.0, seed: int = 0, offset: int = 0):
    """Aggregation over one block of source nodes: ``(partial out, lse)``; ``indices`` are local to the
    block (``xl`` holds only its rows, ``edge_attr`` only its edges in the block's CSR order). Give each
    block its own range of dropout counters (``offset``)."""
    edge_attr, w_edge = _edge_args(xl, edge_attr, w_edge, indices.shape[0])
    return torch.ops.slimops.gatv2_forward(xl, xr, att, edge_attr, w_edge, indptr, indices, float(negative_slope),
                                           float(dropout), int(seed), int(offset))


def gatv2_partial_backward(grad_out, out, lse, xl, xr, att, indptr, indices, edge_attr=None, w_edge=None,
                           negative_slope: float = 0.2, dropout: float = 0.0, seed: int = 0, offset: int = 0):
    """Gradients for one block given the *merged* output, its gradient and the merged lse:
    ``(grad_xl_block, grad_xr, grad_att, grad_edge_attr_block, grad_w_edge)`` (the middle and last are
    this block's contributions)."""
    edge_attr, w_edge = _edge_args(xl, edge_attr, w_edge, indices.shape[0])
    return torch.ops.slimops.gatv2_backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse,
                                            float(negative_slope), float(dropout), int(seed), int(offset))


class _Sequential(torch.autograd.Function):
    """Forward over source blocks one at a time, merging (out, lse); backward block by block with the merged
    statistics. Saves the blocks' inputs, the merged output and lse."""

    @staticmethod
    def forward(ctx, xr, att, w_edge, negative_slope, dropout, seed, offsets, *flat):
        out = lse = None
        for b in range(len(flat) // 4):
            xl, ea, indptr, indices = flat[4 * b:4 * b + 4]
            o, l = torch.ops.slimops.gatv2_forward(xl, xr, att, ea, w_edge, indptr, indices, negative_slope, dropout,
                                                   seed, offsets[b])
            out, lse = (o, l) if out is None else merge([out, o], [lse, l])
        ctx.save_for_backward(xr, att, w_edge, out, lse, *flat)
        ctx.args = (negative_slope, dropout, seed, offsets)
        ctx.backend = current_backend()
        return out

    @staticmethod
    def backward(ctx, grad_out):
        xr, att, w_edge, out, lse, *flat = ctx.saved_tensors
        negative_slope, dropout, seed, offsets = ctx.args
        grad_out = grad_out.contiguous()
        sums, grads = None, []
        with use_backend(ctx.backend):
            for b in range(len(flat) // 4):
                xl, ea, indptr, indices = flat[4 * b:4 * b + 4]
                g_xl, g_xr, g_att, g_ea, g_w = torch.ops.slimops.gatv2_backward(
                    grad_out, xl, xr, att, ea, w_edge, indptr, indices, out, lse, negative_slope, dropout, seed,
                    offsets[b])
                sums = (g_xr, g_att, g_w) if sums is None else tuple(s + t for s, t in zip(sums, (g_xr, g_att, g_w)))
                grads += [g_xl, g_ea, None, None]
        return (*sums, None, None, None, None, *grads)


def gatv2_sequential_aggregate(blocks, xr, att, w_edge=None, negative_slope: float = 0.2, dropout: float = 0.0,
                               seed: Optional[int] = None, offset: int = 0) -> torch.Tensor:
    """Differentiable GATv2 aggregation over source blocks ``[(xl_b, edge_attr_b or None, indptr_b, indices_b),
    ...]`` (``indices_b`` local to the block, ``edge_attr_b`` in the block's CSR order), one block at a time
    forward and backward (SAR). Equals :func:`gatv2_attention` on the whole graph without dropout; with
    dropout, block ``b`` uses counters from ``offset + edges before b``. ``w_edge`` is needed when the blocks
    carry edge features."""
    if dropout > 0 and seed is None:
        seed = draw_seed()
    offsets, flat, start = [], [], offset
    w = None
    for xl, ea, indptr, indices in blocks:
        if (ea is None) != (w_edge is None):
            raise ValueError("give every block's edge_attr exactly when w_edge is given")
        ea, w = _edge_args(xl, ea, w_edge, indices.shape[0])
        offsets.append(start)
        start += indices.numel()
        flat += [xl, ea, indptr, indices]
    if w is None:
        raise ValueError("gatv2_sequential_aggregate needs at least one block")
    return _Sequential.apply(xr, att, w, float(negative_slope), float(dropout), int(seed or 0), tuple(offsets), *flat)
