"""Python API of fused GATv2 attention over the ``torch.ops.slimops.gatv2_*`` ops.

Partial aggregation over blocks of source nodes works as for the GAT op: each block's
``(out, lse)`` from :func:`gatv2_partial_forward` merges with :func:`slimops.gat.merge` (the same
``gat_merge`` op, unchanged: both ops produce a normalised partial output and its log-sum-exp), and
:func:`gatv2_partial_backward` with the merged output, its gradient and the merged lse gives the
block's exact gradients (grad_xr, grad_att and grad_w_edge are summed over blocks).
"""

from __future__ import annotations

from typing import Optional

import torch

from .api import draw_seed


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
    return torch.ops.slimops.gatv2_forward(xl, xr, att, edge_attr, w_edge, indptr, indices, float(negative_slope), p,
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
