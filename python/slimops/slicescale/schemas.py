"""The ``mx_convert`` op: schema, argument checks and fake kernel.

``mx_convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest")
-> (data, scales)`` takes packed MX data with the argument conventions of
``mx_dequantize`` and returns the same tensor packed in ``dst_fmt`` (same axis
and block size), without going through a high-precision tensor. Not
differentiable (uint8 in, uint8 out).

``mx_convert_out(..., rounding, out_data, out_scales, counts=None)`` writes the same bytes into the
caller's tensors (straight into them when the blocked axis is their last and they are contiguous,
else through a temporary) and, with ``counts`` (int64, ``NUM_COUNTS``), the conversion report's
block counts (``REPORT_FIELDS``): lossless, scale clamped, NaN, saturated, flushed to zero.
"""

from __future__ import annotations

import torch

from ..mx.formats import BLOCK_SIZES, MXFormat, get_format
from .._library import check, lib
from .reference import REPORT_FIELDS, ROUNDINGS, check_pair

OPS = ("mx_convert",)

lib.define(
    "mx_convert(Tensor data, Tensor scales, str src_fmt, str dst_fmt, int block_size, int axis, int length, "
    "str rounding=\"nearest\") -> (Tensor data, Tensor scales)"
)
lib.define(
    "mx_convert_out(Tensor data, Tensor scales, str src_fmt, str dst_fmt, int block_size, int axis, int length, "
    "str rounding, Tensor(a!) out_data, Tensor(b!) out_scales, Tensor(c!)? counts=None) -> ()"
)
# The conversion report's counts (``counts``, int64), in the order of ReportCount in
# kernels/slicescale/slicescale_element.cuh.
NUM_COUNTS = len(REPORT_FIELDS)


def packed_shape(shape, axis: int, n: int) -> list[int]:
    out = list(shape)
    out[axis] = n
    return out


def check_convert_args(data: torch.Tensor, scales: torch.Tensor, src_fmt: str, dst_fmt: str, block_size: int,
                       axis: int, length: int, rounding: str) -> tuple[MXFormat, MXFormat, int]:
    """Validate every argument (exceptions name it); return (src, dst, normalized axis)."""
    check(isinstance(src_fmt, str), TypeError, f"src_fmt must be a format name (str), got {type(src_fmt).__name__}")
    check(isinstance(dst_fmt, str), TypeError, f"dst_fmt must be a format name (str), got {type(dst_fmt).__name__}")
    try:
        src = get_format(src_fmt)
    except ValueError as e:
        raise ValueError(f"src_fmt: {e}") from None
    try:
        dst = get_format(dst_fmt)
    except ValueError as e:
        raise ValueError(f"dst_fmt: {e}") from None
    check_pair(src, dst)
    check(rounding in ROUNDINGS, ValueError, f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    check(isinstance(block_size, int) and block_size in BLOCK_SIZES, ValueError,
          f"block_size must be one of {BLOCK_SIZES}, got {block_size!r}")
    check(isinstance(data, torch.Tensor) and data.dtype == torch.uint8, TypeError,
          f"data must be a uint8 tensor (packed MX elements), got {getattr(data, 'dtype', type(data).__name__)}")
    check(isinstance(scales, torch.Tensor) and scales.dtype in (torch.uint8, torch.float8_e8m0fnu), TypeError,
          f"scales must be uint8 or float8_e8m0fnu (E8M0 bytes), got {getattr(scales, 'dtype', type(scales).__name__)}")
    check(data.device == scales.device, ValueError,
          f"data and scales must be on the same device, got data on {data.device} and scales on {scales.device}")
    check(data.dim() >= 1, ValueError, "data: MX needs a tensor with at least one dimension, got a 0-d tensor")
    check(data.dim() == scales.dim(), ValueError,
          f"scales must have as many dimensions as data ({data.dim()}), got {scales.dim()}")
    check(isinstance(axis, int) and -data.dim() <= axis < data.dim(), ValueError,
          f"axis={axis!r} is out of range for a {data.dim()}-d tensor")
    ax = axis % data.dim()
    check(isinstance(length, int) and length >= 0, ValueError, f"length must be a non-negative int, got {length!r}")
    want_data = packed_shape(data.shape, ax, src.packed_bytes(length))
    want_scales = packed_shape(data.shape, ax, -(-length // block_size))
    check(list(data.shape) == want_data, ValueError,
          f"data has shape {list(data.shape)}, expected {want_data} for {length} {src.name} elements along axis {ax}")
    check(list(scales.shape) == want_scales, ValueError,
          f"scales has shape {list(scales.shape)}, expected {want_scales} (blocks of {block_size} along axis {ax})")
    return src, dst, ax


@torch.library.register_fake("slimops::mx_convert")
def _mx_convert_fake(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    _, dst, ax = check_convert_args(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)
    out = data.new_empty(packed_shape(data.shape, ax, dst.packed_bytes(length)), dtype=torch.uint8)
    return out, scales.new_empty(scales.shape, dtype=torch.uint8)


def check_convert_out(data: torch.Tensor, dst: MXFormat, ax: int, length: int, block_size: int, out_data, out_scales,
                      counts) -> None:
    """``mx_convert_out``'s buffers: the result's shapes, uint8 (scales: or float8_e8m0fnu), data's device;
    ``counts`` None or a contiguous int64 tensor of NUM_COUNTS on that device."""
    for name, t, shape, dtypes in (
            ("out_data", out_data, packed_shape(data.shape, ax, dst.packed_bytes(length)), (torch.uint8,)),
            ("out_scales", out_scales, packed_shape(data.shape, ax, -(-length // block_size)),
             (torch.uint8, torch.float8_e8m0fnu))):
        check(isinstance(t, torch.Tensor), TypeError, f"{name} must be a torch.Tensor, got {type(t).__name__}")
        check(t.dtype in dtypes, TypeError, f"{name} must be {' or '.join(map(str, dtypes))}, got {t.dtype}")
        check(list(t.shape) == shape, ValueError, f"{name} has shape {list(t.shape)}, expected {shape} "
                                                  f"({length} {dst.name} elements along axis {ax})")
        check(t.device == data.device, ValueError, f"{name} must be on {data.device}, got {t.device}")
    if counts is not None:
        check(isinstance(counts, torch.Tensor) and counts.dtype == torch.int64, TypeError,
              f"counts must be an int64 tensor, got {getattr(counts, 'dtype', type(counts).__name__)}")
        check(tuple(counts.shape) == (NUM_COUNTS,) and counts.is_contiguous(), ValueError,
              f"counts must be a contiguous tensor of shape ({NUM_COUNTS},), got {tuple(counts.shape)}")
        check(counts.device == data.device, ValueError, f"counts must be on {data.device}, got {counts.device}")


@torch.library.register_fake("slimops::mx_convert_out")
def _mx_convert_out_fake(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, out_data, out_scales,
                         counts=None):
    _, dst, ax = check_convert_args(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)
    check_convert_out(data, dst, ax, length, block_size, out_data, out_scales, counts)
