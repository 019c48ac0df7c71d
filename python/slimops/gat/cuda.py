"""CUDA C++ kernels of the GAT ops (``slimops._C_cuda``, device pointers and the current stream)."""

from __future__ import annotations

import torch

from .._backend import native_module
from .cpu import _dims, _ptr
from .reference import transposed_index


MAX_BLOCKS = 0  # 0: the kernels' own cap (2^30 CTAs); the tests set a few to exercise the grid-stride loops


def _stream(t):
    return torch.cuda.current_stream(t.device).cuda_stream


def forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None):
    n_dst, heads = a_dst.shape
    out = torch.empty(n_dst, heads, h.shape[2], dtype=h.dtype, device=h.device)
    lse = torch.empty(n_dst, heads, dtype=torch.float32, device=h.device)
    with torch.cuda.device(h.device):
        native_module("_C_cuda").gat_forward(
            h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(), indices.data_ptr(), out.data_ptr(),
            lse.data_ptr(), *_dims(h, a_dst, indices), negative_slope, dropout, seed, offset, _stream(h),
            _ptr(a_edge), MAX_BLOCKS)
    return out, lse


def backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset,
             a_edge=None):
    grad_h, grad_a_src, grad_a_dst = torch.empty_like(h), torch.empty_like(a_src), torch.empty_like(a_dst)
    # zeros: a position outside every row (a malformed CSR, not validated here) is never written
    grad_a_edge = torch.zeros_like(a_edge) if a_edge is not None else a_src.new_empty(0, a_src.shape[1])
    colptr, csc_edge, csc_row = transposed_index(indptr, indices, h.shape[0])  # guarded torch ops
    delta = torch.empty(a_dst.shape, dtype=torch.float32, device=h.device)  # the kernels' work: g . out per row
    with torch.cuda.device(h.device):
        native_module("_C_cuda").gat_backward(
            grad_out.data_ptr(), h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(),
            indices.data_ptr(), out.data_ptr(), lse.data_ptr(), grad_h.data_ptr(), grad_a_src.data_ptr(),
            grad_a_dst.data_ptr(), colptr.data_ptr(), csc_edge.data_ptr(), csc_row.data_ptr(), delta.data_ptr(),
            *_dims(h, a_dst, indices), negative_slope, dropout, seed, offset, _stream(h), _ptr(a_edge),
            _ptr(a_edge) and _ptr(grad_a_edge), MAX_BLOCKS)
    return grad_h, grad_a_src, grad_a_dst, grad_a_edge
