"""The GATv2 ops: schemas, argument checks, fake kernels and autograd.

* ``gatv2_forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset)
  -> (out, lse)``
* ``gatv2_backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope,
  dropout, seed, offset) -> (grad_xl, grad_xr, grad_att, grad_edge_attr, grad_w_edge)``

Shapes: ``xl`` [N_src, H, C], ``xr`` [N_dst, H, C], ``att`` [H, C], ``edge_attr`` [E, D] (CSR order),
``w_edge`` [H*C, D]; D = 0 means no edge term. Partials merge with ``gat_merge``. The math is in
:mod:`slimops.gat.v2_reference`. The checks run before any kernel on every device and read only
shapes, dtypes and devices; the CSR's values are checked by the CPU kernels (as for the GAT op).
"""

from __future__ import annotations

import torch

from .._backend import current_backend, use_backend
from .._library import FLOAT_DTYPES, check, check_tensor, lib
from .schemas import INDEX_DTYPES

OPS = ("gatv2_forward", "gatv2_backward")

lib.define("gatv2_forward(Tensor xl, Tensor xr, Tensor att, Tensor edge_attr, Tensor w_edge, Tensor indptr, "
           "Tensor indices, float negative_slope, float dropout, int seed, int offset) -> (Tensor out, Tensor lse)")
lib.define("gatv2_backward(Tensor grad_out, Tensor xl, Tensor xr, Tensor att, Tensor edge_attr, Tensor w_edge, "
           "Tensor indptr, Tensor indices, Tensor out, Tensor lse, float negative_slope, float dropout, int seed, "
           "int offset) -> (Tensor grad_xl, Tensor grad_xr, Tensor grad_att, Tensor grad_edge_attr, "
           "Tensor grad_w_edge)")


def check_forward_args(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout):
    """Shapes, dtypes, devices; returns (n_src, n_dst, heads, channels, n_edges, edge_dim)."""
    named = (("xl", xl), ("xr", xr), ("att", att), ("edge_attr", edge_attr), ("w_edge", w_edge),
             ("indptr", indptr), ("indices", indices))
    for name, t in named:
        check_tensor(t, name)
    check(xl.dim() == 3, ValueError, lambda: f"xl must be 3-d [N_src, heads, channels], got shape {list(xl.shape)}")
    n_src, heads, channels = xl.shape
    check(xl.dtype in FLOAT_DTYPES, TypeError, lambda: f"xl must be float32, bfloat16 or float16, got {xl.dtype}")
    check(xr.dim() == 3 and tuple(xr.shape[1:]) == (heads, channels), ValueError,
          lambda: f"xr must have shape [N_dst, heads, channels] = [N_dst, {heads}, {channels}] (from xl), "
          f"got {list(xr.shape)}")
    check(tuple(att.shape) == (heads, channels), ValueError,
          lambda: f"att must have shape [heads, channels] = {[heads, channels]}, got {list(att.shape)}")
    check(indices.dim() == 1, ValueError, lambda: f"indices must be 1-d, got shape {list(indices.shape)}")
    n_dst, n_edges = xr.shape[0], indices.shape[0]
    check(edge_attr.dim() == 2 and edge_attr.shape[0] == n_edges, ValueError,
          lambda: f"edge_attr must have shape [E, edge_dim] with E = len(indices) = {n_edges} (edge_dim 0: no edge "
          f"features), got {list(edge_attr.shape)}")
    edge_dim = edge_attr.shape[1]
    check(tuple(w_edge.shape) == (heads * channels, edge_dim), ValueError,
          lambda: f"w_edge must have shape [heads * channels, edge_dim] = {[heads * channels, edge_dim]}, "
          f"got {list(w_edge.shape)}")
    for name, t in named[1:5]:
        check(t.dtype == xl.dtype, TypeError, lambda: f"{name} must have xl's dtype {xl.dtype}, got {t.dtype}")
    check(indptr.dim() == 1 and indptr.numel() == n_dst + 1, ValueError,
          lambda: f"indptr must be 1-d with N_dst + 1 = {n_dst + 1} entries (N_dst from xr), "
                  f"got shape {list(indptr.shape)}")
    check(indptr.dtype in INDEX_DTYPES and indices.dtype == indptr.dtype, TypeError,
          lambda: f"indptr and indices must both be int32 or both int64, got {indptr.dtype} and {indices.dtype}")
    for name, t in named[1:]:
        check(t.device == xl.device, ValueError, lambda: f"{name} must be on xl's device {xl.device}, got {t.device}")
    check(isinstance(negative_slope, (int, float)), TypeError, "negative_slope must be a float")
    check(isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0, ValueError,
          lambda: f"dropout must be in [0, 1), got {dropout!r}")
    return n_src, n_dst, heads, channels, n_edges, edge_dim


def check_backward_args(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope,
                        dropout):
    dims = check_forward_args(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout)
    _, n_dst, heads, channels = dims[:4]
    for name, t in (("grad_out", grad_out), ("out", out), ("lse", lse)):
        check_tensor(t, name)
        check(t.device == xl.device, ValueError, lambda: f"{name} must be on xl's device {xl.device}, got {t.device}")
    want = [n_dst, heads, channels]
    for name, t in (("grad_out", grad_out), ("out", out)):
        check(list(t.shape) == want, ValueError, lambda: f"{name} must have shape [N_dst, heads, channels] = {want}, "
              f"got {list(t.shape)}")
        check(t.dtype == xl.dtype, TypeError, lambda: f"{name} must have xl's dtype {xl.dtype}, got {t.dtype}")
    check(list(lse.shape) == [n_dst, heads] and lse.dtype == torch.float32, ValueError,
          lambda: f"lse must be float32 of shape {[n_dst, heads]}, got {lse.dtype} {list(lse.shape)}")
    return dims


# ----------------------------------------------------------------------------- fake kernels


def _empty(t):
    return torch.empty_like(t, memory_format=torch.contiguous_format)


@torch.library.register_fake("slimops::gatv2_forward")
def _gatv2_forward_fake(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
    _, n_dst, heads, channels, _, _ = check_forward_args(xl, xr, att, edge_attr, w_edge, indptr, indices,
                                                         negative_slope, dropout)
    return xl.new_empty(n_dst, heads, channels), xl.new_empty(n_dst, heads, dtype=torch.float32)


@torch.library.register_fake("slimops::gatv2_backward")
def _gatv2_backward_fake(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope,
                         dropout, seed, offset):
    check_backward_args(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope, dropout)
    return _empty(xl), _empty(xr), _empty(att), _empty(edge_attr), _empty(w_edge)


# ----------------------------------------------------------------------------- autograd


def _setup_context(ctx, inputs, output):
    xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset = inputs
    out, lse = output
    ctx.save_for_backward(xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse)
    ctx.args = (negative_slope, dropout, seed, offset)
    ctx.backend = current_backend()  # backward re-enters it (autograd may run it on another thread)
    ctx.mark_non_differentiable(lse)


def _backward(ctx, grad_out, grad_lse):
    xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    with use_backend(ctx.backend):
        grads = torch.ops.slimops.gatv2_backward(grad_out.contiguous(), xl, xr, att, edge_attr, w_edge, indptr,
                                                 indices, out, lse, *ctx.args)
    return (*grads, None, None, None, None, None, None)


torch.library.register_autograd("slimops::gatv2_forward", _backward, setup_context=_setup_context)
