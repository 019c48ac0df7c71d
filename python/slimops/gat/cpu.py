"""C++ CPU kernels of the GAT ops (``slimops._C``, raw pointers), on contiguous tensors."""

from __future__ import annotations

import torch

from .._backend import native_module

DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


def _dims(h, a_dst, indices):
    n_src, heads, channels = h.shape
    return [n_src, a_dst.shape[0], heads, channels, indices.numel(), DTYPE_CODES[h.dtype],
            32 if indices.dtype == torch.int32 else 64]


def forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset):
    n_dst, heads = a_dst.shape
    out = torch.empty(n_dst, heads, h.shape[2], dtype=h.dtype)
    lse = torch.empty(n_dst, heads, dtype=torch.float32)
    native_module("_C").gat_forward(h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(),
                                    indices.data_ptr(), out.data_ptr(), lse.data_ptr(), *_dims(h, a_dst, indices),
                                    negative_slope, dropout, seed, offset, torch.get_num_threads())
    return out, lse


def backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset):
    n_src = h.shape[0]
    grad_h, grad_a_src, grad_a_dst = torch.empty_like(h), torch.empty_like(a_src), torch.empty_like(a_dst)
    colptr = torch.empty(n_src + 1, dtype=torch.int64)   # workspace: the transposed (CSC) index
    csc_edge = torch.empty(indices.numel(), dtype=indices.dtype)
    delta = torch.empty(a_dst.shape, dtype=torch.float32)
    native_module("_C").gat_backward(
        grad_out.data_ptr(), h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(), indices.data_ptr(),
        out.data_ptr(), lse.data_ptr(), grad_h.data_ptr(), grad_a_src.data_ptr(), grad_a_dst.data_ptr(),
        colptr.data_ptr(), csc_edge.data_ptr(), delta.data_ptr(), *_dims(h, a_dst, indices), negative_slope,
        dropout, seed, offset, torch.get_num_threads())
    return grad_h, grad_a_src, grad_a_dst
