"""The mxgemm family's op schemas, argument checks, fakes and autograd.

``mx_linear(x, w_data, w_scales, w_fmt, block_size, bias) -> y``: ``x @ W.T + bias`` where ``W``
[N, K] is an MX weight packed as slimops packs it (blocks along K: ``w_data`` [N, packed(K)],
``w_scales`` [N, ceil(K / block_size)]), ``x`` [..., K] fp32, bf16 or fp16, ``bias`` optional
[N] (any float dtype), ``y`` [..., N] in ``x``'s dtype.

``mx_linear_backward(grad_y, w_data, w_scales, w_fmt, block_size, in_features) -> grad_x``:
``grad_y @ W`` [..., K] in ``grad_y``'s dtype, the gradient of ``x``.

The kernels call the checks first (``check_linear_args``), so bad input gets the same clear
exception on every device and backend before any launch; the fakes reuse them.
"""

from __future__ import annotations

import torch

from .._library import FLOAT_DTYPES, check, lib
from ..mx.formats import BLOCK_SIZES, FORMATS, MXFormat, get_format

OPS = ("mx_linear", "mx_linear_backward")

lib.define("mx_linear(Tensor x, Tensor w_data, Tensor w_scales, str w_fmt, int block_size, Tensor? bias=None) "
           "-> Tensor")
lib.define("mx_linear_backward(Tensor grad_y, Tensor w_data, Tensor w_scales, str w_fmt, int block_size, "
           "int in_features) -> Tensor")


# ----------------------------------------------------------------------------- argument checks
# Each message is formatted only when its check fails (the checks run on every call).


def _dtype_name(t) -> str:
    return str(t.dtype) if isinstance(t, torch.Tensor) else type(t).__name__


def check_weight(w_data, w_scales, w_fmt, block_size: int, in_features: int, device) -> MXFormat:
    """The packed weight [N, packed(K)] and its scales [N, ceil(K / block_size)] for K = in_features."""
    f = FORMATS.get(w_fmt) if isinstance(w_fmt, str) else None  # the canonical names; aliases below
    if f is None:
        if not isinstance(w_fmt, str):
            raise TypeError(f"w_fmt must be a format name (str), got {type(w_fmt).__name__}")
        try:
            f = get_format(w_fmt)
        except ValueError as e:
            raise ValueError(f"w_fmt: {e}") from None
    if block_size not in BLOCK_SIZES or not isinstance(block_size, int) or isinstance(block_size, bool):
        raise ValueError(f"block_size must be one of {BLOCK_SIZES}, got {block_size!r}")
    if not (isinstance(w_data, torch.Tensor) and w_data.dtype == torch.uint8):
        raise TypeError(f"w_data must be a uint8 tensor (packed MX elements), got {_dtype_name(w_data)}")
    if not (isinstance(w_scales, torch.Tensor) and w_scales.dtype in (torch.uint8, torch.float8_e8m0fnu)):
        raise TypeError(f"w_scales must be a uint8 or float8_e8m0fnu tensor (E8M0 bytes), got {_dtype_name(w_scales)}")
    if w_data.dim() != 2:
        raise ValueError(f"w_data must be 2-D [out_features, packed bytes], got {w_data.dim()}-D "
                         f"{list(w_data.shape)}")
    n = w_data.shape[0]
    want_data, want_scales = (n, f.packed_bytes(in_features)), (n, -(-in_features // block_size))
    if w_data.shape != want_data:
        raise ValueError(f"w_data has shape {list(w_data.shape)}, expected {list(want_data)}: {in_features} input "
                         f"features (K) packed as {f.name} take {want_data[1]} bytes a row; K does not match "
                         "the packed weight")
    if w_scales.shape != want_scales:
        raise ValueError(f"w_scales has shape {list(w_scales.shape)}, expected {list(want_scales)} (one scale per "
                         f"block of {block_size} of the {in_features} input features)")
    if w_data.device != device or w_scales.device != device:
        raise ValueError(f"x (or grad_y), w_data and w_scales must be on one device, got {device}, "
                         f"{w_data.device} and {w_scales.device}")
    return f


def check_linear_args(x, w_data, w_scales, w_fmt, block_size, bias) -> MXFormat:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be float32, bfloat16 or float16, got {x.dtype}")
    if x.dim() < 1:
        raise ValueError("x must have at least one dimension ([..., in_features]), got a 0-d tensor")
    f = check_weight(w_data, w_scales, w_fmt, block_size, x.shape[-1], x.device)
    if bias is not None:
        if not (isinstance(bias, torch.Tensor) and bias.dtype in FLOAT_DTYPES):
            raise TypeError(f"bias must be None or a float32, bfloat16 or float16 tensor, got {_dtype_name(bias)}")
        if list(bias.shape) != [w_data.shape[0]]:
            raise ValueError(f"bias has shape {list(bias.shape)}, expected [{w_data.shape[0]}] (out_features)")
        if bias.device != x.device:
            raise ValueError(f"bias must be on x's device {x.device}, got {bias.device}")
    return f


def check_backward_args(grad_y, w_data, w_scales, w_fmt, block_size, in_features) -> MXFormat:
    if not isinstance(grad_y, torch.Tensor):
        raise TypeError(f"grad_y must be a torch.Tensor, got {type(grad_y).__name__}")
    if grad_y.dtype not in FLOAT_DTYPES:
        raise TypeError(f"grad_y must be float32, bfloat16 or float16, got {grad_y.dtype}")
    if not (isinstance(in_features, int) and not isinstance(in_features, bool) and in_features >= 0):
        raise ValueError(f"in_features must be a non-negative int, got {in_features!r}")
    f = check_weight(w_data, w_scales, w_fmt, block_size, in_features, grad_y.device)
    check(grad_y.dim() >= 1 and grad_y.shape[-1] == w_data.shape[0], ValueError,
          f"grad_y must be [..., {w_data.shape[0]}] (out_features last), got {list(grad_y.shape)}")
    return f


# ----------------------------------------------------------------------------- fake kernels


@torch.library.register_fake("slimops::mx_linear")
def _mx_linear_fake(x, w_data, w_scales, w_fmt, block_size, bias=None):
    check_linear_args(x, w_data, w_scales, w_fmt, block_size, bias)
    return x.new_empty(*x.shape[:-1], w_data.shape[0])


@torch.library.register_fake("slimops::mx_linear_backward")
def _mx_linear_backward_fake(grad_y, w_data, w_scales, w_fmt, block_size, in_features):
    check_backward_args(grad_y, w_data, w_scales, w_fmt, block_size, in_features)
    return grad_y.new_empty(*grad_y.shape[:-1], in_features)


# ----------------------------------------------------------------------------- autograd
# d y / d x = W: grad_x = grad_y @ W, through the same packed weight (mx_linear_backward, one tile
# of W at a time); d y / d bias = the sum of grad_y over the rows. The packed weight is frozen:
# it gets no gradient (uint8 codes and scales are not differentiable).


def _setup_context(ctx, inputs, output):
    x, w_data, w_scales, w_fmt, block_size, bias = inputs
    ctx.save_for_backward(w_data, w_scales)
    ctx.w_fmt, ctx.block_size, ctx.in_features = w_fmt, block_size, x.shape[-1]
    ctx.bias_dtype = bias.dtype if bias is not None else None


def _backward(ctx, grad_y):
    w_data, w_scales = ctx.saved_tensors
    grad_x = grad_bias = None
    if ctx.needs_input_grad[0]:
        grad_x = torch.ops.slimops.mx_linear_backward(grad_y, w_data, w_scales, ctx.w_fmt, ctx.block_size,
                                                      ctx.in_features)
    if ctx.bias_dtype is not None and ctx.needs_input_grad[5]:
        grad_bias = grad_y.reshape(-1, grad_y.shape[-1]).sum(0, dtype=torch.float32).to(ctx.bias_dtype)
    return grad_x, None, None, None, None, grad_bias


torch.library.register_autograd("slimops::mx_linear", _backward, setup_context=_setup_context)
