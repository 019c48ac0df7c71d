"""The ``mx_convert`` kernels registered per dispatch key: checks, canonical layout, backend choice.

Every backend implements ``convert_2d(data2d, scales2d, src, dst, block_size, length, rounding,
out=None, counts=None)`` on the canonical layout (blocked axis last, contiguous (rows, bytes));
this module moves the axis (``slimops.mx.dispatch.to_2d`` / ``from_2d``), validates the arguments
once (the same exception on every backend) and picks the implementation: ``reference.py``,
``cpu.py`` (C++), ``cuda.py`` (CUDA C++), ``triton.py``. ``mx_convert_out`` hands the caller's
buffers to the backend when the blocked axis is their last and they are contiguous (no allocation),
and otherwise converts into a temporary and copies.
"""

from __future__ import annotations

import math

import torch

from .._backend import register_family, resolve
from ..mx.dispatch import from_2d, to_2d
from . import reference
from .schemas import check_convert_args, check_convert_out, packed_shape

FAMILY = "slicescale"
# The implementations besides the reference, in the order "auto" prefers them.
register_family(FAMILY, {"mx_convert": {"cpu": ("native", "triton"), "cuda": ("triton", "native")}})


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


def _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest", pick=None, out=None,
             counts=None):
    src, dst, ax = check_convert_args(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)
    if out is not None:
        check_convert_out(data, dst, ax, length, block_size, *out, counts)
    scales = scales.view(torch.uint8)
    empty = math.prod(packed_shape(data.shape, ax, length)) == 0 or src == dst
    impl = reference if empty or pick is None else pick(data.device.type)
    direct = out is not None and ax == data.dim() - 1 and all(t.is_contiguous() for t in out)
    out2d = None
    if direct:
        out2d = tuple(t.view(torch.uint8).view(math.prod(t.shape[:-1]), t.shape[-1]) for t in out)
    d2, s2 = impl.convert_2d(to_2d(data, ax), to_2d(scales, ax), src, dst, block_size, length, rounding, out=out2d,
                             counts=counts)
    if out is None:
        return from_2d(d2, data.shape, ax), from_2d(s2, scales.shape, ax)
    if not direct:
        out[0].copy_(from_2d(d2, out[0].shape, ax))
        out[1].view(torch.uint8).copy_(from_2d(s2, out[1].shape, ax))
    return None


@torch.library.register_kernel("slimops::mx_convert", None)
def _mx_convert_default(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding)


@torch.library.register_kernel("slimops::mx_convert", "cpu")
def _mx_convert_cpu(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, implementation)


@torch.library.register_kernel("slimops::mx_convert", "cuda")
def _mx_convert_cuda(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding="nearest"):
    return _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, implementation)


def _register_out(dispatch_key, pick) -> None:
    @torch.library.register_kernel("slimops::mx_convert_out", dispatch_key)
    def mx_convert_out(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, out_data, out_scales,
                       counts=None):
        _convert(data, scales, src_fmt, dst_fmt, block_size, axis, length, rounding, pick, (out_data, out_scales),
                 counts)


_register_out(None, None)
_register_out("cpu", implementation)
_register_out("cuda", implementation)
