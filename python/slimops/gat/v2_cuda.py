"""CUDA C++ kernels of the GATv2 ops (``slimops._C_cuda``, device pointers and the current stream)."""

from __future__ import annotations

import torch

from .._backend import native_module
from .cuda import _stream
from .reference import _edges, transposed_index
from .v2_cpu import codes, dims

CHUNK = 256  # CSR positions per partial sum of grad_att / grad_w_edge (fixed: deterministic)


def forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
    n_dst, heads, channels = xr.shape
    out = torch.empty(n_dst, heads, channels, dtype=xl.dtype, device=xl.device)
    lse = torch.empty(n_dst, heads, dtype=torch.float32, device=xl.device)
    with torch.cuda.device(xl.device):
        native_module("_C_cuda").gatv2_forward(
            xl.data_ptr(), xr.data_ptr(), att.data_ptr(), edge_attr.data_ptr(), w_edge.data_ptr(), indptr.data_ptr(),
            indices.data_ptr(), out.data_ptr(), lse.data_ptr(), *dims(xl, xr, edge_attr, indices),
            *codes(xl, indices), negative_slope, dropout, seed, offset, _stream(xl))
    return out, lse


def backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope, dropout, seed,
             offset):
    n_src, heads, channels = xl.shape
    n_dst, n_edges, edge_dim = xr.shape[0], indices.numel(), edge_attr.shape[1]
    dev = xl.device
    grad_xl, grad_xr = torch.empty_like(xl), torch.empty_like(xr)
    row = _edges(indptr, indices, n_dst)[0].to(indices.dtype)
    colptr, csc_edge, csc_row = transposed_index(indptr, indices, n_src)
    ws = torch.empty(2, n_edges, heads, dtype=torch.float32, device=dev)
    n_chunks = (n_edges + CHUNK - 1) // CHUNK
    gea = torch.zeros(n_edges, edge_dim, dtype=torch.float32, device=dev)
    partial_att = torch.zeros(n_chunks, heads * channels, dtype=torch.float32, device=dev)
    partial_w = torch.zeros(n_chunks, heads * channels, edge_dim, dtype=torch.float32, device=dev)
    with torch.cuda.device(dev):
        native_module("_C_cuda").gatv2_backward(
            grad_out.data_ptr(), xl.data_ptr(), xr.data_ptr(), att.data_ptr(), edge_attr.data_ptr(),
            w_edge.data_ptr(), indptr.data_ptr(), indices.data_ptr(), out.data_ptr(), lse.data_ptr(),
            grad_xl.data_ptr(), grad_xr.data_ptr(), row.data_ptr(), colptr.data_ptr(), csc_edge.data_ptr(),
            csc_row.data_ptr(), ws.data_ptr(), gea.data_ptr(), partial_att.data_ptr(), partial_w.data_ptr(),
            *dims(xl, xr, edge_attr, indices), CHUNK, *codes(xl, indices), negative_slope, dropout, seed, offset,
            _stream(xl))
    return (grad_xl, grad_xr, partial_att.sum(0).view(heads, channels).to(att.dtype), gea.to(edge_attr.dtype),
            partial_w.sum(0).to(w_edge.dtype))
