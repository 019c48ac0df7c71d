"""The MX family's op schemas, defined once, with their fake (meta) kernels, argument checks and autograd.

The kernels (``dispatch.py``: the reference, C++, CUDA C++, Triton) call the
checks first, so bad input gets the same clear exception on every device and
backend, before any launch.
"""

from __future__ import annotations

import torch

from .._library import FLOAT_DTYPES, check, lib
from .formats import BLOCK_SIZES, SCALE_MODES, MXFormat, get_format

OPS = ("mx_quantize", "mx_dequantize", "mx_fake_quantize")

lib.define(
    "mx_quantize(Tensor x, str fmt, int block_size, int axis, str scale_mode, bool stochastic, "
    "int seed) -> (Tensor data, Tensor scales)"
)
lib.define(
    "mx_dequantize(Tensor data, Tensor scales, str fmt, int block_size, int axis, int length, "
    "ScalarType dtype) -> Tensor"
)
lib.define(
    "mx_fake_quantize(Tensor x, str fmt, int block_size, int axis, str scale_mode, bool stochastic, "
    "int seed) -> Tensor"
)


# ----------------------------------------------------------------------------- argument checks


def normalize_axis(axis: int, ndim: int, arg: str = "axis") -> int:
    check(isinstance(axis, int), TypeError, f"{arg} must be an int, got {type(axis).__name__}")
    check(ndim >= 1, ValueError, f"{arg}: MX needs a tensor with at least one dimension, got a 0-d tensor")
    check(-ndim <= axis < ndim, ValueError, f"{arg}={axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def check_common(fmt: str, block_size: int, scale_mode: str = "floor") -> MXFormat:
    f = get_format(fmt)
    check(isinstance(block_size, int) and block_size in BLOCK_SIZES, ValueError,
           f"block_size must be one of {BLOCK_SIZES}, got {block_size!r}")
    check(scale_mode in SCALE_MODES, ValueError,
           f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
    return f


def check_quantize_args(x: torch.Tensor, fmt: str, block_size: int, axis: int, scale_mode: str) -> tuple[MXFormat, int]:
    check(isinstance(x, torch.Tensor), TypeError, f"x must be a torch.Tensor, got {type(x).__name__}")
    check(x.dtype in FLOAT_DTYPES, TypeError,
           f"x must be float32, bfloat16 or float16, got {x.dtype}")
    f = check_common(fmt, block_size, scale_mode)
    return f, normalize_axis(axis, x.dim())


def packed_shape(shape, axis: int, n: int) -> list[int]:
    out = list(shape)
    out[axis] = n
    return out


def check_dequantize_args(data: torch.Tensor, scales: torch.Tensor, fmt: str, block_size: int, axis: int,
                          length: int, dtype: torch.dtype) -> tuple[MXFormat, int]:
    f = check_common(fmt, block_size)
    check(data.dtype == torch.uint8, TypeError, f"data must be uint8 (packed MX elements), got {data.dtype}")
    check(scales.dtype in (torch.uint8, torch.float8_e8m0fnu), TypeError,
           f"scales must be uint8 or float8_e8m0fnu (E8M0 bytes), got {scales.dtype}")
    check(data.device == scales.device, ValueError,
           f"data and scales must be on the same device, got data on {data.device} and scales on {scales.device}")
    check(dtype in FLOAT_DTYPES, TypeError, f"dtype must be float32, bfloat16 or float16, got {dtype}")
    check(data.dim() == scales.dim(), ValueError,
           f"scales must have as many dimensions as data ({data.dim()}), got {scales.dim()}")
    ax = normalize_axis(axis, data.dim())
    check(isinstance(length, int) and length >= 0, ValueError, f"length must be a non-negative int, got {length!r}")
    want_data = packed_shape(data.shape, ax, f.packed_bytes(length))
    want_scales = packed_shape(data.shape, ax, -(-length // block_size))
    check(list(data.shape) == want_data, ValueError,
           f"data has shape {list(data.shape)}, expected {want_data} for {length} {f.name} elements along axis {ax}")
    check(list(scales.shape) == want_scales, ValueError,
           f"scales has shape {list(scales.shape)}, expected {want_scales} (blocks of {block_size} along axis {ax})")
    return f, ax


# ----------------------------------------------------------------------------- fake kernels


@torch.library.register_fake("slimops::mx_quantize")
def _mx_quantize_fake(x, fmt, block_size, axis, scale_mode, stochastic, seed):
    f, ax = check_quantize_args(x, fmt, block_size, axis, scale_mode)
    length = x.shape[ax]
    data = x.new_empty(packed_shape(x.shape, ax, f.packed_bytes(length)), dtype=torch.uint8)
    scales = x.new_empty(packed_shape(x.shape, ax, -(-length // block_size)), dtype=torch.uint8)
    return data, scales


@torch.library.register_fake("slimops::mx_dequantize")
def _mx_dequantize_fake(data, scales, fmt, block_size, axis, length, dtype):
    _, ax = check_dequantize_args(data, scales, fmt, block_size, axis, length, dtype)
    return data.new_empty(packed_shape(data.shape, ax, length), dtype=dtype)


@torch.library.register_fake("slimops::mx_fake_quantize")
def _mx_fake_quantize_fake(x, fmt, block_size, axis, scale_mode, stochastic, seed):
    check_quantize_args(x, fmt, block_size, axis, scale_mode)
    return x.new_empty(x.shape)  # contiguous, as every kernel returns


# ----------------------------------------------------------------------------- autograd


def _fake_quantize_backward(ctx, grad):
    """Straight-through estimator: d fake_quantize(x) / dx = 1."""
    return grad, None, None, None, None, None, None


torch.library.register_autograd("slimops::mx_fake_quantize", _fake_quantize_backward)
