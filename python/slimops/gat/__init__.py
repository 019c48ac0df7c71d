"""Fused GAT attention with rematerialisation (``torch.ops.slimops.gat_*``).

Public API::

    out = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, negative_slope=0.2, dropout=0.0)
    indptr, indices = slimops.gat.csr_from_edge_index(edge_index, num_nodes)
    out, lse = slimops.gat.gat_attention(h, a_src, a_dst, indptr, indices, a_edge=a_edge, return_lse=True)
    alpha = slimops.gat.attention_weights(a_src, a_dst, indptr, indices, lse, a_edge=a_edge)   # only when wanted

Partial aggregation over blocks of source nodes (SAR's sequential aggregation)::

    out_b, lse_b = slimops.gat.partial_forward(h_b, a_src_b, a_dst, indptr_b, indices_b, ...)
    out, lse = slimops.gat.merge([out_0, out_1, ...], [lse_0, lse_1, ...])
    grad_h_b, grad_a_src_b, grad_a_dst_b = slimops.gat.partial_backward(grad_out, out, lse, h_b, ...)
    out = slimops.gat.sequential_aggregate(blocks, a_dst, ...)   # differentiable, one block at a time

Importing this module registers the ops and their kernels. The math and its
notation are in :mod:`slimops.gat.reference`.
"""

from __future__ import annotations

from . import schemas  # noqa: F401  (op schemas first)
from . import dispatch  # noqa: F401  (kernel registrations)
from .api import (attention_weights, csr_from_edge_index, draw_seed, gat_attention, index_dtype_for, merge,
                  node_scores, partial_backward, partial_forward, sequential_aggregate)

__all__ = ["attention_weights", "csr_from_edge_index", "draw_seed", "gat_attention", "index_dtype_for", "merge",
           "node_scores", "partial_backward", "partial_forward", "sequential_aggregate"]

# GATv2 (Brody et al.): its own ops (gatv2_forward / gatv2_backward), same CSR, dropout and merge.
from . import v2_schemas, v2_dispatch  # noqa: E402,F401
from .v2_api import (gatv2_attention, gatv2_partial_backward, gatv2_partial_forward,  # noqa: E402
                     gatv2_sequential_aggregate)

__all__ += ["gatv2_attention", "gatv2_partial_backward", "gatv2_partial_forward", "gatv2_sequential_aggregate"]
