"""The MX family's op schemas, defined once, with their fake (meta) kernels, argument checks and autograd.

The kernels (``dispatch.py``: the reference, C++, CUDA C++, Triton) call the
checks first, so bad input gets the same clear exception on every device and
backend, before any launch.
"""

from __future__ import annotations

import torch

from .._library import FLOAT_DTYPES, check, lib
from .formats import BLOCK_SIZES, SCALE_MODES, MXFormat, get_format

lib.define(
    "mx_dequantize_out(Tensor data, Tensor scales, str fmt, int block_size, int axis, int length, "
    "Tensor(a!) out) -> ()"
)
lib.define(
    "mx_fake_quantize_out(Tensor x, str fmt, int block_size, int axis, str scale_mode, bool stochastic, "
    "int seed, Tensor(a!) out) -> ()"
)
lib.define(
    "mx_quantize_out(Tensor x, str fmt, int block_size, int axis, str scale_mode, bool stochastic, "
    "int seed, Tensor(a!) out_data, Tensor(b!) out_scales) -> ()"
)

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
# Every op call runs these: each message is formatted only when its check fails (an f-string
# argument to _library.check would be built on every call, most of a small call's cost).


def normalize_axis(axis: int, ndim: int, arg: str = "axis") -> int:
    if not isinstance(axis, int):
        raise TypeError(f"{arg} must be an int, got {type(axis).__name__}")
    if ndim < 1:
        raise ValueError(f"{arg}: MX needs a tensor with at least one dimension, got a 0-d tensor")
    if not (-ndim <= axis < ndim):
        raise ValueError(f"{arg}={axis} is out of range for a {ndim}-d tensor")
    return axis % ndim


def check_common(fmt: str, block_size: int, scale_mode: str = "floor") -> MXFormat:
    f = get_format(fmt)
    if not (isinstance(block_size, int) and block_size in BLOCK_SIZES):
        raise ValueError(f"block_size must be one of {BLOCK_SIZES}, got {block_size!r}")
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
    return f


def check_quantize_args(x: torch.Tensor, fmt: str, block_size: int, axis: int, scale_mode: str) -> tuple[MXFormat, int]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be float32, bfloat16 or float16, got {x.dtype}")
    f = check_common(fmt, block_size, scale_mode)
    return f, normalize_axis(axis, x.dim())


SEED_RANGE = (-(2**63), 2**63)


def check_seed(seed) -> int:
    """A seed is any int64 (the op schemas' ``int``); all 64 bits count (``reference.seed32``)."""
    if not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not (SEED_RANGE[0] <= seed < SEED_RANGE[1]):
        raise ValueError(f"seed must fit in int64 ([-2**63, 2**63)), got {seed}")
    return seed


def packed_shape(shape, axis: int, n: int) -> list[int]:
    out = list(shape)
    out[axis] = n
    return out


def check_dequantize_args(data: torch.Tensor, scales: torch.Tensor, fmt: str, block_size: int, axis: int,
                          length: int, dtype: torch.dtype) -> tuple[MXFormat, int]:
    f = check_common(fmt, block_size)
    if data.dtype != torch.uint8:
        raise TypeError(f"data must be uint8 (packed MX elements), got {data.dtype}")
    if scales.dtype not in (torch.uint8, torch.float8_e8m0fnu):
        raise TypeError(f"scales must be uint8 or float8_e8m0fnu (E8M0 bytes), got {scales.dtype}")
    if data.device != scales.device:
        raise ValueError(f"data and scales must be on the same device, got data on {data.device} and scales on "
                         f"{scales.device}")
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
    if data.dim() != scales.dim():
        raise ValueError(f"scales must have as many dimensions as data ({data.dim()}), got {scales.dim()}")
    ax = normalize_axis(axis, data.dim())
    if not (isinstance(length, int) and length >= 0):
        raise ValueError(f"length must be a non-negative int, got {length!r}")
    want_data = packed_shape(data.shape, ax, f.packed_bytes(length))
    want_scales = packed_shape(data.shape, ax, -(-length // block_size))
    if list(data.shape) != want_data:
        raise ValueError(f"data has shape {list(data.shape)}, expected {want_data} for {length} {f.name} elements "
                         f"along axis {ax}")
    if list(scales.shape) != want_scales:
        raise ValueError(f"scales has shape {list(scales.shape)}, expected {want_scales} (blocks of {block_size} "
                         f"along axis {ax})")
    return f, ax


def check_out(out, shape, dtype: torch.dtype, device: torch.device, what: str) -> None:
    """``out=`` of the caller: a tensor of the result's shape, dtype and device (any strides)."""
    check(isinstance(out, torch.Tensor), TypeError, f"out must be a torch.Tensor, got {type(out).__name__}")
    check(out.dtype == dtype, TypeError, f"out must be {dtype} (the {what} dtype), got {out.dtype}")
    check(list(out.shape) == list(shape), ValueError, f"out has shape {list(out.shape)}, expected {list(shape)}")
    check(out.device == device, ValueError, f"out must be on {device}, got {out.device}")


def check_quantize_out(x: torch.Tensor, f: MXFormat, ax: int, block_size: int, out_data, out_scales) -> None:
    """``mx_quantize_out``'s buffers: the shapes of the result, uint8 (scales: or float8_e8m0fnu), x's device."""
    length = x.shape[ax]
    for name, t, shape, dtypes in (
            ("out_data", out_data, packed_shape(x.shape, ax, f.packed_bytes(length)), (torch.uint8,)),
            ("out_scales", out_scales, packed_shape(x.shape, ax, -(-length // block_size)),
             (torch.uint8, torch.float8_e8m0fnu))):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in dtypes:
            raise TypeError(f"{name} must be {' or '.join(map(str, dtypes))}, got {t.dtype}")
        if list(t.shape) != shape:
            raise ValueError(f"{name} has shape {list(t.shape)}, expected {shape} ({length} {f.name} elements "
                             f"along axis {ax})")
        if t.device != x.device:
            raise ValueError(f"{name} must be on {x.device}, got {t.device}")


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


@torch.library.register_fake("slimops::mx_dequantize_out")
def _mx_dequantize_out_fake(data, scales, fmt, block_size, axis, length, out):
    _, ax = check_dequantize_args(data, scales, fmt, block_size, axis, length, out.dtype)
    check_out(out, packed_shape(data.shape, ax, length), out.dtype, data.device, "output")


@torch.library.register_fake("slimops::mx_quantize_out")
def _mx_quantize_out_fake(x, fmt, block_size, axis, scale_mode, stochastic, seed, out_data, out_scales):
    f, ax = check_quantize_args(x, fmt, block_size, axis, scale_mode)
    check_quantize_out(x, f, ax, block_size, out_data, out_scales)


@torch.library.register_fake("slimops::mx_fake_quantize_out")
def _mx_fake_quantize_out_fake(x, fmt, block_size, axis, scale_mode, stochastic, seed, out):
    check_quantize_args(x, fmt, block_size, axis, scale_mode)
    check_out(out, x.shape, x.dtype, x.device, "input's")


# ----------------------------------------------------------------------------- autograd


def _fake_quantize_backward(ctx, grad):
    """Straight-through estimator: d fake_quantize(x) / dx = 1."""
    return grad, None, None, None, None, None, None


torch.library.register_autograd("slimops::mx_fake_quantize", _fake_quantize_backward)
