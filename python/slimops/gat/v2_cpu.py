"""C++ CPU kernels of the GATv2 ops (``slimops._C``, raw pointers), on contiguous tensors."""

from __future__ import annotations

import torch

from .._backend import native_module
from .cpu import DTYPE_CODES

# Destination rows per partial sum of grad_att / grad_w_edge in backward: fixed, so that the result does
# not depend on the thread count.
CHUNK_ROWS = 64


def dims(xl, xr, edge_attr, indices):
    n_src, heads, channels = xl.shape
    return [n_src, xr.shape[0], heads, channels, indices.numel(), edge_attr.shape[1]]


def codes(xl, indices):
    return [DTYPE_CODES[xl.dtype], 32 if indices.dtype == torch.int32 else 64]


def forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
    n_dst, heads, channels = xr.shape
    out = torch.empty(n_dst, heads, channels, dtype=xl.dtype)
    lse = torch.empty(n_dst, heads, dtype=torch.float32)
    native_module("_C").gatv2_forward(
        xl.data_ptr(), xr.data_ptr(), att.data_ptr(), edge_attr.data_ptr(), w_edge.data_ptr(), indptr.data_ptr(),
        indices.data_ptr(), out.data_ptr(), lse.data_ptr(), *dims(xl, xr, edge_attr, indices), *codes(xl, indices),
        negative_slope, dropout, seed, offset, torch.get_num_threads())
    return out, lse


def backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope, dropout, seed,
             offset):
    n_src, heads, channels = xl.shape
    n_dst, n_edges, edge_dim = xr.shape[0], indices.numel(), edge_attr.shape[1]
    grads = [torch.empty_like(t) for t in (xl, xr, att, edge_attr, w_edge)]
    colptr = torch.empty(n_src + 1, dtype=torch.int64)  # workspaces: the transposed (CSC) index,
    csc = torch.empty(2, n_edges, dtype=indices.dtype)
    ws = torch.empty(2, n_edges, heads, dtype=torch.float32)  # p and de per edge and head,
    n_chunks = (n_dst + CHUNK_ROWS - 1) // CHUNK_ROWS  # and the per-chunk sums of grad_att, grad_w_edge
    partial = torch.empty(n_chunks, heads * channels * (1 + edge_dim), dtype=torch.float32)
    native_module("_C").gatv2_backward(
        grad_out.data_ptr(), xl.data_ptr(), xr.data_ptr(), att.data_ptr(), edge_attr.data_ptr(), w_edge.data_ptr(),
        indptr.data_ptr(), indices.data_ptr(), out.data_ptr(), lse.data_ptr(), *(t.data_ptr() for t in grads),
        colptr.data_ptr(), csc[0].data_ptr(), csc[1].data_ptr(), ws.data_ptr(), partial.data_ptr(),
        *dims(xl, xr, edge_attr, indices), CHUNK_ROWS, *codes(xl, indices), negative_slope, dropout, seed, offset,
        torch.get_num_threads())
    return tuple(grads)
