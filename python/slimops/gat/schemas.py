"""The GAT ops: schemas, argument checks, fake kernels and autograd.

* ``gat_forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None)
  -> (out, lse)``; ``a_edge`` [E, H]: an optional per-edge, per-head score added to the logit, in CSR order
  (GATConv's edge-feature term);
* ``gat_backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed,
  offset, a_edge=None) -> (grad_h, grad_a_src, grad_a_dst, grad_a_edge)`` (grad_a_edge [E, H], or
  [0, H] without ``a_edge``)
* ``gat_merge(outs, lses) -> (out, lse)``: combine partial aggregations.
* ``gat_scores(h, att) -> s``: the node scores of K attention vectors, s[k, n, h] = h[n, h, :] . att[k, h, :]
  (FusedGATConv's a_src and a_dst in one pass over h); ``gat_scores_backward(grad, h, att, grad_h) ->
  (grad_h_out, grad_att)`` adds the score gradients into ``grad_h`` (optional) in one pass.

The math is in :mod:`slimops.gat.reference`. The checks here run before any
kernel on every device; they read only shapes, dtypes and devices (no host
sync). The CSR's values are checked by the CPU kernels (and by the reference, on any device), not by
the CUDA kernels, which guard every read instead (the backward's transposed index too).
"""

from __future__ import annotations

import torch

from .._backend import current_backend, use_backend
from .._library import FLOAT_DTYPES, check, lib

INDEX_DTYPES = (torch.int32, torch.int64)
OPS = ("gat_forward", "gat_backward", "gat_merge")

lib.define("gat_forward(Tensor h, Tensor a_src, Tensor a_dst, Tensor indptr, Tensor indices, float negative_slope, "
           "float dropout, int seed, int offset, Tensor? a_edge=None) -> (Tensor out, Tensor lse)")
lib.define("gat_backward(Tensor grad_out, Tensor h, Tensor a_src, Tensor a_dst, Tensor indptr, Tensor indices, "
           "Tensor out, Tensor lse, float negative_slope, float dropout, int seed, int offset, Tensor? a_edge=None) "
           "-> (Tensor grad_h, Tensor grad_a_src, Tensor grad_a_dst, Tensor grad_a_edge)")
lib.define("gat_merge(Tensor outs, Tensor lses) -> (Tensor out, Tensor lse)")
lib.define("gat_scores(Tensor h, Tensor att) -> Tensor")
lib.define("gat_scores_backward(Tensor grad, Tensor h, Tensor att, Tensor? grad_h=None) -> (Tensor grad_h_out, "
           "Tensor grad_att)")


def _is_tensor(x, name: str) -> None:
    check(isinstance(x, torch.Tensor), TypeError, lambda: f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout,
                       a_edge=None) -> tuple[int, int, int, int]:
    """Shapes, dtypes, devices; returns (n_src, n_dst, heads, channels)."""
    for name, t in (("h", h), ("a_src", a_src), ("a_dst", a_dst), ("indptr", indptr), ("indices", indices)):
        _is_tensor(t, name)
    check(h.dim() == 3, ValueError, lambda: f"h must be 3-d [N_src, heads, channels], got shape {list(h.shape)}")
    n_src, heads, channels = h.shape
    check(h.dtype in FLOAT_DTYPES, TypeError, lambda: f"h must be float32, bfloat16 or float16, got {h.dtype}")
    check(a_src.dim() == 2 and tuple(a_src.shape) == (n_src, heads), ValueError,
          lambda: f"a_src must have shape [N_src, heads] = {[n_src, heads]} (from h), got {list(a_src.shape)}")
    check(a_dst.dim() == 2 and a_dst.shape[1] == heads, ValueError,
          lambda: f"a_dst must have shape [N_dst, heads={heads}], got {list(a_dst.shape)}")
    for name, t in (("a_src", a_src), ("a_dst", a_dst)):
        check(t.dtype == h.dtype, TypeError, lambda: f"{name} must have h's dtype {h.dtype}, got {t.dtype}")
    n_dst = a_dst.shape[0]
    check(indptr.dim() == 1 and indptr.numel() == n_dst + 1, ValueError,
          lambda: f"indptr must be 1-d with N_dst + 1 = {n_dst + 1} entries (N_dst from a_dst), "
                  f"got shape {list(indptr.shape)}")
    check(indices.dim() == 1, ValueError, lambda: f"indices must be 1-d, got shape {list(indices.shape)}")
    check(indptr.dtype in INDEX_DTYPES and indices.dtype == indptr.dtype, TypeError,
          lambda: f"indptr and indices must both be int32 or both int64, got {indptr.dtype} and {indices.dtype}")
    for name, t in (("a_src", a_src), ("a_dst", a_dst), ("indptr", indptr), ("indices", indices)):
        check(t.device == h.device, ValueError, lambda: f"{name} must be on h's device {h.device}, got {t.device}")
    check(isinstance(negative_slope, (int, float)), TypeError, "negative_slope must be a float")
    check(isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0, ValueError,
          lambda: f"dropout must be in [0, 1), got {dropout!r}")
    if a_edge is not None:
        _is_tensor(a_edge, "a_edge")
        check(a_edge.dim() == 2 and tuple(a_edge.shape) == (indices.numel(), heads), ValueError,
              lambda: f"a_edge must have shape [E, heads] = {[indices.numel(), heads]} (E from indices), "
              f"got {list(a_edge.shape)}")
        check(a_edge.dtype == h.dtype, TypeError, lambda: f"a_edge must have h's dtype {h.dtype}, got {a_edge.dtype}")
        check(a_edge.device == h.device, ValueError,
              lambda: f"a_edge must be on h's device {h.device}, got {a_edge.device}")
    return n_src, n_dst, heads, channels


def check_backward_args(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, a_edge=None):
    dims = check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout, a_edge)
    _, n_dst, heads, channels = dims
    for name, t in (("grad_out", grad_out), ("out", out), ("lse", lse)):
        _is_tensor(t, name)
        check(t.device == h.device, ValueError, lambda: f"{name} must be on h's device {h.device}, got {t.device}")
    want = [n_dst, heads, channels]
    for name, t in (("grad_out", grad_out), ("out", out)):
        check(list(t.shape) == want, ValueError, lambda: f"{name} must have shape [N_dst, heads, channels] = {want}, "
              f"got {list(t.shape)}")
        check(t.dtype == h.dtype, TypeError, lambda: f"{name} must have h's dtype {h.dtype}, got {t.dtype}")
    check(list(lse.shape) == [n_dst, heads] and lse.dtype == torch.float32, ValueError,
          lambda: f"lse must be float32 of shape {[n_dst, heads]}, got {lse.dtype} {list(lse.shape)}")
    return dims


def check_merge_args(outs, lses) -> None:
    _is_tensor(outs, "outs")
    _is_tensor(lses, "lses")
    check(outs.dim() == 4, ValueError,
          lambda: f"outs must be 4-d [partials, N, heads, channels], got {list(outs.shape)}")
    check(outs.dtype in FLOAT_DTYPES, TypeError, lambda: f"outs must be float32, bfloat16 or float16, got {outs.dtype}")
    check(list(lses.shape) == list(outs.shape[:3]) and lses.dtype == torch.float32, ValueError,
          lambda: f"lses must be float32 of shape {list(outs.shape[:3])}, got {lses.dtype} {list(lses.shape)}")
    check(lses.device == outs.device, ValueError,
          lambda: f"lses must be on outs' device {outs.device}, got {lses.device}")


def check_scores_args(h, att, grad=None, grad_h=None) -> tuple:
    """h [N, H, C] (a float dtype), att [K, H, C] (h's dtype or fp32); returns (N, K, H, C)."""
    _is_tensor(h, "h")
    _is_tensor(att, "att")
    check(h.dim() == 3, ValueError, lambda: f"h must be 3-d [N, heads, channels], got shape {list(h.shape)}")
    check(h.dtype in FLOAT_DTYPES, TypeError, lambda: f"h must be float32, bfloat16 or float16, got {h.dtype}")
    n, heads, channels = h.shape
    check(att.dim() == 3 and tuple(att.shape[1:]) == (heads, channels) and att.shape[0] >= 1, ValueError,
          lambda: f"att must have shape [K, heads, channels] = [K, {heads}, {channels}], got {list(att.shape)}")
    check(att.dtype in (h.dtype, torch.float32), TypeError,
          lambda: f"att must have h's dtype or float32, got {att.dtype}")
    check(att.device == h.device, ValueError, lambda: f"att must be on h's device {h.device}, got {att.device}")
    k = att.shape[0]
    for name, t, want in (("grad", grad, [k, n, heads]), ("grad_h", grad_h, [n, heads, channels])):
        if t is not None:
            _is_tensor(t, name)
            check(list(t.shape) == want and t.dtype == h.dtype and t.device == h.device, ValueError,
                  lambda: f"{name} must be {h.dtype} of shape {want} on {h.device}, "
                          f"got {t.dtype} {list(t.shape)} on {t.device}")
    return n, k, heads, channels


# ----------------------------------------------------------------------------- fake kernels


@torch.library.register_fake("slimops::gat_forward")
def _gat_forward_fake(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None):
    _, n_dst, heads, channels = check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout, a_edge)
    return h.new_empty(n_dst, heads, channels), h.new_empty(n_dst, heads, dtype=torch.float32)


@torch.library.register_fake("slimops::gat_backward")
def _gat_backward_fake(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset,
                      a_edge=None):
    check_backward_args(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, a_edge)
    return torch.empty_like(h, memory_format=torch.contiguous_format), \
        torch.empty_like(a_src, memory_format=torch.contiguous_format), \
        torch.empty_like(a_dst, memory_format=torch.contiguous_format), \
        a_src.new_empty(a_edge.shape if a_edge is not None else (0, a_src.shape[1]))


@torch.library.register_fake("slimops::gat_merge")
def _gat_merge_fake(outs, lses):
    check_merge_args(outs, lses)
    return outs.new_empty(outs.shape[1:]), lses.new_empty(lses.shape[1:])


@torch.library.register_fake("slimops::gat_scores")
def _gat_scores_fake(h, att):
    n, k, heads, _ = check_scores_args(h, att)
    return h.new_empty(k, n, heads)


@torch.library.register_fake("slimops::gat_scores_backward")
def _gat_scores_backward_fake(grad, h, att, grad_h=None):
    check_scores_args(h, att, grad, grad_h)
    return torch.empty_like(h, memory_format=torch.contiguous_format), torch.empty_like(att)


# ----------------------------------------------------------------------------- autograd


def _setup_context(ctx, inputs, output):
    h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, *rest = inputs
    a_edge = rest[0] if rest else None
    out, lse = output
    ctx.save_for_backward(h, a_src, a_dst, indptr, indices, out, lse, a_edge)
    ctx.args = (negative_slope, dropout, seed, offset)
    ctx.backend = current_backend()  # backward re-enters it (autograd may run it on another thread)
    ctx.mark_non_differentiable(lse)


def _backward(ctx, grad_out, grad_lse):
    h, a_src, a_dst, indptr, indices, out, lse, a_edge = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    with use_backend(ctx.backend):
        grad_h, grad_a_src, grad_a_dst, grad_a_edge = torch.ops.slimops.gat_backward(
            grad_out.contiguous(), h, a_src, a_dst, indptr, indices, out, lse, *ctx.args, a_edge)
    return (grad_h, grad_a_src, grad_a_dst, None, None, None, None, None, None,
            grad_a_edge if a_edge is not None else None)


torch.library.register_autograd("slimops::gat_forward", _backward, setup_context=_setup_context)


def _scores_setup(ctx, inputs, output):
    h, att = inputs
    ctx.save_for_backward(h, att)
    ctx.backend = current_backend()


def _scores_backward(ctx, grad):
    h, att = ctx.saved_tensors
    with use_backend(ctx.backend):
        grad_h, grad_att = torch.ops.slimops.gat_scores_backward(grad.contiguous(), h, att, None)
    return grad_h, grad_att


torch.library.register_autograd("slimops::gat_scores", _scores_backward, setup_context=_scores_setup)
