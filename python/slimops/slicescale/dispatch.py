"""The ``mx_convert`` kernels registered per dispatch key: checks, canonical layout, backend choice.

Every backend implements ``convert_2d(data2d, scales2d, src, dst, block_size, length, rounding)``
on the canonical layout (blocked axis last, contiguous (rows, bytes)); this module moves the
axis, validates the arguments once (the same exception on every backend) and picks the
implementation: ``reference.py``, ``cpu.py`` (C++), ``cuda.py`` (CUDA C++), ``triton.py``.
"""

from __future__ import annotations

import math

import torch

from .._backend import register_family, resolve
from . import reference
from .schemas import check_convert_args, packed_shape

FAMILY = "slicescale"
# The implementations besides the reference, in the order "auto" prefers them.
register_family(FAMILY, {"mx_convert": {"cpu": ("native", "triton"), "cuda": ("triton", "native")}})


def to_2d(x: torch.Tensor, axis: int) -> torch.Tensor:
    moved = x.movedim(axis, -1)
    return moved.contiguous().view(math.prod(moved.shape[:-1]), moved.shape[-1])


def from_2d(y2d: torch.Tensor, shape, axis: int) -> torch.Tensor:
    moved_shape = list(shape)
    moved_shape.pop(axis)
    return y2d.reshape(*moved_shape, y2d.shape[1]).movedim(-1, axis).contiguous()


def implementation(device_type: str):
    """The module whose ``convert_2d`` runs on ``device_type`` under the selected backend."""
    choice = resolve(FAMILY, "mx_convert", device_type)
    if choice == "triton":
        from . import triton as impl
    elif choice == "native" and device_type == "cpu":
        from . import cpu as impl
    elif choice == "native" and device_type == "cuda":
        from . import cuda as impl
    else:
        impl = reference
    return impl


def _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest", pick=None):
    src, dst, ax = check_convert_args(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)
    scales = scales.view(torch.uint8)
    out_shape = packed_shape(data.shape, ax, length)
    empty = math.prod(out_shape) == 0 or src == dst
    impl = reference if empty or pick is None else pick(data.device.type)
    d2, s2 = impl.convert_2d(to_2d(data, ax), to_2d(scales, ax), src, dst, block_size, length, rounding)
    return from_2d(d2, data.shape, ax), from_2d(s2, scales.shape, ax)


@torch.library.register_kernel("slimops::mx_convert", None)
def _mx_convert_default(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)


@torch.library.register_kernel("slimops::mx_convert", "cpu")
def _mx_convert_cpu(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, implementation)


@torch.library.register_kernel("slimops::mx_convert", "cuda")
def _mx_convert_cuda(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, implementation)
