"""C++ CPU kernels of the GAT ops (``slimops._C``, raw pointers), on contiguous tensors."""

from __future__ import annotations

import threading

import torch

from .._backend import native_module

DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
BIAS_BLOCK = 64  # kBiasBlock (kernels/gat/gat_types.h): rows per partial sum of the backward's bias gradient


def _dims(h, a_dst, indices):
    n_src, heads, channels = h.shape
    return [n_src, a_dst.shape[0], heads, channels, indices.numel(), DTYPE_CODES[h.dtype],
            32 if indices.dtype == torch.int32 else 64]


def _ptr(t):
    """A tensor's address, 0 for None or an empty tensor (the kernels' "absent")."""
    return 0 if t is None or t.numel() == 0 else t.data_ptr()


def grads_like(h, a_src, a_dst, a_edge, score_grads=None):
    """Empty (grad_h, grad_a_src, grad_a_dst, grad_a_edge); grad_a_edge is [0, H] without an edge score.
    ``score_grads`` ([2, N, H]): grad_a_src and grad_a_dst are its two halves."""
    gs, gd = (torch.empty_like(a_src), torch.empty_like(a_dst)) if score_grads is None else score_grads
    return (torch.empty_like(h), gs, gd,
            torch.empty_like(a_edge) if a_edge is not None else a_src.new_empty(0, a_src.shape[1]))


def forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None, bias=None):
    """``(out, lse)``; ``bias`` (optional, fp32 [H * C], contiguous): added to each row of out in the kernel."""
    n_dst, heads = a_dst.shape
    out = torch.empty(n_dst, heads, h.shape[2], dtype=h.dtype)
    lse = torch.empty(n_dst, heads, dtype=torch.float32)
    native_module("_C").gat_forward(h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(),
                                    indices.data_ptr(), out.data_ptr(), lse.data_ptr(), *_dims(h, a_dst, indices),
                                    negative_slope, dropout, seed, offset, torch.get_num_threads(), _ptr(a_edge),
                                    _ptr(bias))
    return out, lse


_scratch = threading.local()


def _workspace(numel: int) -> torch.Tensor:
    """A float32 buffer of ``numel`` elements, kept per thread across calls and grown when a call needs more: the
    backward's [E, 2H] workspace, which as fresh memory on every call pays its first-touch page faults each time
    (about 250 us on Cora on the development VM, a tenth of the layer's attention). It holds the largest size seen,
    as the C++ kernels' own scratch (mxgemm) does."""
    buf = getattr(_scratch, "work", None)
    if buf is None or buf.numel() < numel:
        buf = torch.empty(numel, dtype=torch.float32)
        _scratch.work = buf
    return buf[:numel]


def transpose(indptr, indices, n_src: int):
    """The backward's transposed index of a CSR: ``(colptr [N_src + 1] int64, csc_edge [E] (indices' dtype),
    csc_row [E] int64)``, CSR positions grouped by source (stable) and their rows. Checks the CSR's values."""
    n_edges = indices.numel()
    colptr = torch.empty(n_src + 1, dtype=torch.int64)
    csc_edge = torch.empty(n_edges, dtype=indices.dtype)
    csc_row = torch.empty(n_edges, dtype=torch.int64)
    native_module("_C").gat_transpose(indptr.data_ptr(), indices.data_ptr(), colptr.data_ptr(), _ptr(csc_edge),
                                      _ptr(csc_row), n_src, indptr.numel() - 1, n_edges,
                                      32 if indices.dtype == torch.int32 else 64)
    return colptr, csc_edge, csc_row


def backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset,
             a_edge=None, csc=None, bias=None, grad_bias=None, score_grads=None):
    """``(grad_h, grad_a_src, grad_a_dst, grad_a_edge)``. ``csc``: the graph's :func:`transpose`, when the caller
    keeps it (else the kernel builds it). ``bias``: the forward's, when it added one (``out`` is then out + bias).
    ``grad_bias`` (optional, fp32 [H * C], contiguous): receives grad_out summed over the rows (in fixed blocks of
    BIAS_BLOCK rows, then the blocks in order). ``score_grads`` (optional, [2, N, H] contiguous, h's dtype):
    grad_a_src and grad_a_dst are written into its two halves (the layer's scores backward takes them stacked)."""
    n_src, n_edges = h.shape[0], indices.numel()
    grads = grads_like(h, a_src, a_dst, a_edge, score_grads)
    colptr, csc_edge, csc_row = csc if csc is not None else (   # workspaces: the transposed (CSC) index
        torch.empty(n_src + 1, dtype=torch.int64), torch.empty(n_edges, dtype=indices.dtype),
        torch.empty(n_edges, dtype=torch.int64))
    heads, n_dst = a_dst.shape[1], a_dst.shape[0]
    # alpha * w and ds of each edge, then the bias gradient's per-block sums (read only by this call)
    bias_sums = -(-n_dst // BIAS_BLOCK) * h.shape[1] * h.shape[2] if grad_bias is not None else 0
    work = _workspace(n_edges * 2 * heads + bias_sums)
    native_module("_C").gat_backward(
        grad_out.data_ptr(), h.data_ptr(), a_src.data_ptr(), a_dst.data_ptr(), indptr.data_ptr(), indices.data_ptr(),
        out.data_ptr(), lse.data_ptr(), *(t.data_ptr() for t in grads[:3]), colptr.data_ptr(), csc_edge.data_ptr(),
        csc_row.data_ptr(), work.data_ptr(), *_dims(h, a_dst, indices), negative_slope, dropout, seed, offset,
        torch.get_num_threads(), _ptr(a_edge), _ptr(a_edge) and _ptr(grads[3]), csc is not None, _ptr(bias),
        _ptr(grad_bias))
    return grads


def scores(h, att):
    n, heads, channels = h.shape
    k = att.shape[0]
    s = torch.empty(k, n, heads, dtype=h.dtype)
    att32 = att.float().contiguous()
    native_module("_C").gat_scores(h.data_ptr(), att32.data_ptr(), s.data_ptr(), n, heads, channels, k,
                                   DTYPE_CODES[h.dtype], torch.get_num_threads())
    return s


def scores_backward(grad, h, att, grad_h=None, out=None):
    """(grad_h + the score gradients, grad_att); ``out``: where the first goes (may be ``grad_h`` itself: each
    node's row is read before it is written)."""
    n, heads, channels = h.shape
    k = att.shape[0]
    att32 = att.float().contiguous()
    grad_h_out = torch.empty_like(h) if out is None else out
    grad_att = torch.empty(k, heads, channels, dtype=torch.float32)
    work = torch.empty(-(-n // 512), k * heads * channels, dtype=torch.float32)  # kScoresBlock (gat_types.h)
    native_module("_C").gat_scores_backward(grad.data_ptr(), h.data_ptr(), att32.data_ptr(), _ptr(grad_h),
                                            grad_h_out.data_ptr(), grad_att.data_ptr(), work.data_ptr(), n, heads,
                                            channels, k, DTYPE_CODES[h.dtype], torch.get_num_threads())
    return grad_h_out, grad_att.to(att.dtype)
