"""The eager CPU path of the GAT and GATv2 ops: the C++ kernels behind plain ``autograd.Function`` s.

A call of a Python-registered ``torch.library`` op costs about 40-50 us on this 2-core CPU before its
kernel runs (the autograd wrapper, default filling, redispatch), and a FusedGATConv step makes four of
them (scores, attention, and their backwards): on Cora, where the kernels themselves take about 1 ms,
that is a fifth of the layer's attention. In plain eager mode, on CPU tensors, with the native kernels
selected, :func:`attention`, :func:`scores`, :func:`scores_attention` and :func:`attention_v2` call the
same kernels (``cpu.py``, ``v2_cpu.py``) with the same argument checks directly. Everything else goes
through ``torch.ops.slimops.*``: torch.compile and other tracing, tensor subclasses,
``__torch_dispatch__`` modes (FakeTensor, FlopCounterMode...), functorch transforms, other devices and
backends. Double backward raises, as the ops' backward has no autograd either.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import cpu, v2_cpu, v2_dispatch, v2_schemas
from .dispatch import pick
from .schemas import check_backward_args, check_forward_args, check_scores_args


_PLAIN = (torch.Tensor, torch.nn.Parameter)  # a Parameter is a plain tensor to the dispatcher


def applies(ops, *tensors, resolve_op=pick) -> bool:
    """True when ``ops`` (an op and its backward) may skip the dispatcher: eager mode (no tracing, no torch
    function or dispatch mode, no functorch transform), plain CPU tensors (or parameters), and the native kernels
    picked."""
    if torch.compiler.is_compiling() or _get_current_dispatch_mode() is not None:
        return False
    if torch._C._is_torch_function_mode_enabled() or torch._C._are_functorch_transforms_active():
        return False
    for t in tensors:
        if t is not None and (type(t) not in _PLAIN or t.device.type != "cpu"):
            return False
    return all(resolve_op(op, tensors[0]) == "native" for op in ops)


def _keep(ctx, tensors, args, lse) -> None:
    """Saves ``tensors`` and the op's scalar ``args`` (slope, dropout, seed, offset) for backward; lse is not
    differentiable. An unused output's gradient reaches backward as None, not as a tensor of zeros (autograd
    would allocate and fill one per output and step)."""
    ctx.save_for_backward(*tensors)
    ctx.args = args
    ctx.mark_non_differentiable(lse)
    ctx.set_materialize_grads(False)


def _grad_of(grad_out, out):
    """The output's gradient as the kernels take it: contiguous, zeros when autograd gives None."""
    return torch.zeros_like(out) if grad_out is None else grad_out.contiguous()


class _Attention(torch.autograd.Function):
    """gat_forward / gat_backward (schemas.py) on the C++ CPU kernels."""

    @staticmethod
    def forward(ctx, h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge):
        check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout, a_edge)
        args = [t if t is None else t.contiguous() for t in (h, a_src, a_dst, indptr, indices, a_edge)]
        out, lse = cpu.forward(*args[:5], negative_slope, dropout, seed, offset, args[5])
        _keep(ctx, (*args[:5], out, lse, args[5]), (negative_slope, dropout, seed, offset), lse)
        return out, lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_lse):
        h, a_src, a_dst, indptr, indices, out, lse, a_edge = ctx.saved_tensors
        grad_out = _grad_of(grad_out, out)
        check_backward_args(grad_out, h, a_src, a_dst, indptr, indices, out, lse, *ctx.args[:2], a_edge)
        gh, gs, gd, ge = cpu.backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, *ctx.args, a_edge)
        return gh, gs, gd, None, None, None, None, None, None, (ge if a_edge is not None else None)


class _Scores(torch.autograd.Function):
    """gat_scores / gat_scores_backward (schemas.py) on the C++ CPU kernels."""

    @staticmethod
    def forward(ctx, h, att):
        check_scores_args(h, att)
        h = h.contiguous()
        ctx.save_for_backward(h, att)
        return cpu.scores(h, att)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        h, att = ctx.saved_tensors
        return cpu.scores_backward(grad.contiguous(), h, att)


class _ScoresAttention(torch.autograd.Function):
    """gat_scores(h, att) with K = 2 (a_src, a_dst), then gat_forward on them, as one autograd step: backward
    runs the attention's backward, then folds the score gradients into its grad_h in place (no second
    N x H x C gradient for autograd to add). ``csc``: None, or a function returning the graph's kept
    transposed index (``cpu.transpose``), so that backward does not rebuild it. ``bias``: None, or an fp32 [H * C]
    vector the kernel adds to out (no second N x H x C tensor; its gradient is grad_out summed over nodes)."""

    @staticmethod
    def forward(ctx, h, att, indptr, indices, negative_slope, dropout, seed, offset, a_edge, csc, bias):
        check_scores_args(h, att)
        h = h.contiguous()
        s = cpu.scores(h, att)
        a_src, a_dst = s[0], s[1]
        check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout, a_edge)
        indptr, indices = indptr.contiguous(), indices.contiguous()
        a_edge = None if a_edge is None else a_edge.contiguous()
        bias = None if bias is None else bias.contiguous()
        out, lse = cpu.forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge, bias)
        _keep(ctx, (h, att, indptr, indices, s, out, lse, a_edge, bias), (negative_slope, dropout, seed, offset),
              lse)
        ctx.csc = csc
        return s, out, lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_s, grad_out, grad_lse):
        h, att, indptr, indices, s, out, lse, a_edge, bias = ctx.saved_tensors
        grad_out = _grad_of(grad_out, out)
        check_backward_args(grad_out, h, s[0], s[1], indptr, indices, out, lse, *ctx.args[:2], a_edge)
        csc = ctx.csc() if ctx.csc is not None else None
        g = torch.empty_like(s)  # grad_a_src and grad_a_dst, written by the kernel, stacked for scores_backward
        gbias = torch.empty_like(bias) if bias is not None and ctx.needs_input_grad[10] else None
        gh, _, _, ge = cpu.backward(grad_out, h, s[0], s[1], indptr, indices, out, lse, *ctx.args, a_edge, csc,
                                    bias, grad_bias=gbias, score_grads=g)
        if grad_s is not None:
            g += grad_s
        gh, gatt = cpu.scores_backward(g, h, att, grad_h=gh, out=gh)
        return gh, gatt, None, None, None, None, None, None, (ge if a_edge is not None else None), None, gbias


def scores_attention(h, att, indptr, indices, negative_slope: float, dropout: float, seed: int, offset: int,
                     a_edge=None, csc=None, bias=None):
    """``s = gat_scores(h, att)`` (att [2, H, C]: a_src and a_dst's vectors) and ``gat_forward(h, s[0], s[1],
    ...)``: ``(s, out, lse)``, one autograd step in eager CPU mode, the two ops otherwise. ``csc``: a function
    returning the CSR's ``cpu.transpose`` that the caller keeps (eager CPU mode only). ``bias`` (optional, [H * C]):
    out is then out + bias.view(H, C), added inside the kernel in eager CPU mode when h and bias are fp32."""
    if bias is not None and (bias.dim() != 1 or bias.numel() != h.shape[1] * h.shape[2]):
        raise ValueError(f"bias must be a vector of H * C = {h.shape[1] * h.shape[2]} elements, got shape "
                         f"{list(bias.shape)}")
    if applies(("gat_scores", "gat_scores_backward", "gat_forward", "gat_backward"), h, att, indptr, indices,
               a_edge, bias) and att.dim() == 3 and att.shape[0] == 2:
        in_kernel = bias is not None and h.dtype == bias.dtype == torch.float32
        s, out, lse = _ScoresAttention.apply(h, att, indptr, indices, negative_slope, dropout, seed, offset, a_edge,
                                             csc, bias if in_kernel else None)
        return s, (out if bias is None or in_kernel else out + bias.view(out.shape[1:])), lse
    s = torch.ops.slimops.gat_scores(h, att)
    out, lse = torch.ops.slimops.gat_forward(h, s[0], s[1], indptr, indices, negative_slope, dropout, seed, offset,
                                             a_edge)
    return s, (out if bias is None else out + bias.view(out.shape[1:])), lse


def attention(h, a_src, a_dst, indptr, indices, negative_slope: float, dropout: float, seed: int, offset: int,
              a_edge=None):
    """``torch.ops.slimops.gat_forward(...)``, with the same results, arguments and errors."""
    if applies(("gat_forward", "gat_backward"), h, a_src, a_dst, indptr, indices, a_edge):
        return _Attention.apply(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge)
    return torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset,
                                         a_edge)


class _AttentionV2(torch.autograd.Function):
    """gatv2_forward / gatv2_backward (v2_schemas.py) on the C++ CPU kernels."""

    @staticmethod
    def forward(ctx, xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
        v2_schemas.check_forward_args(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout)
        args = [t.contiguous() for t in (xl, xr, att, edge_attr, w_edge, indptr, indices)]
        out, lse = v2_cpu.forward(*args, negative_slope, dropout, seed, offset)
        _keep(ctx, (*args, out, lse), (negative_slope, dropout, seed, offset), lse)
        return out, lse

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_lse):
        *args, out, lse = ctx.saved_tensors
        grad_out = _grad_of(grad_out, out)
        v2_schemas.check_backward_args(grad_out, *args, out, lse, *ctx.args[:2])
        return (*v2_cpu.backward(grad_out, *args, out, lse, *ctx.args), None, None, None, None, None, None)


def attention_v2(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope: float, dropout: float, seed: int,
                 offset: int):
    """``torch.ops.slimops.gatv2_forward(...)``, with the same results, arguments and errors."""
    if applies(("gatv2_forward", "gatv2_backward"), xl, xr, att, edge_attr, w_edge, indptr, indices,
               resolve_op=v2_dispatch.pick):
        return _AttentionV2.apply(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed,
                                  offset)
    return torch.ops.slimops.gatv2_forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout,
                                           seed, offset)


def scores(h, att):
    """``torch.ops.slimops.gat_scores(h, att)``, with the same results, arguments and errors."""
    if applies(("gat_scores", "gat_scores_backward"), h, att):
        return _Scores.apply(h, att)
    return torch.ops.slimops.gat_scores(h, att)
