"""The MX ops' kernels: argument checks, the canonical layout, and the choice of implementation.

Each implementation module (``reference``, ``cpu``, ``cuda``, ``triton``, ``nvrtc``) works
on the canonical layout only, a contiguous ``(rows, L)`` tensor whose last axis
is the quantized one, through ``quantize_2d``, ``dequantize_2d`` and
``fake_quantize_2d``. The kernels registered here check the arguments, move the
axis, ask :func:`slimops._backend.resolve` which implementation runs, and
restore the caller's layout. The reference is the default kernel (every device).
"""

from __future__ import annotations

import math

import torch

from .._backend import register_family, resolve
from . import cpu, cuda, reference, schemas

FAMILY = "mx"
# The implementations each op has besides the reference, in the order "auto" prefers them.
# CUDA: the CUDA C++ kernels first. Measured side by side on an H100 (16384^2, copy 3.0 TB/s,
# issue 7): bf16 -> MXFP8 quantize 85% of copy with CUDA C++ vs 16% with Triton, bf16 -> MXFP4
# 74% vs 27%, bf16 fake-quantize 86% vs 33%; Triton was nowhere faster. (No report of that run is
# committed yet: the next H100 run's bench/reports/ entry is to confirm or change this line.)
# Then "nvrtc", the same CUDA C++ kernels compiled at first use by NVRTC through CuPy (nvrtc.py), for
# installs where slimops._C_cuda was not built (no nvcc): ahead of Triton for the same reason.
# CPU: the C++ kernels (Triton runs on CPU tensors only in its interpreter, never picked by auto).
register_family(FAMILY, {op: {"cpu": ("native", "triton"), "cuda": ("native", "nvrtc", "triton")}
                         for op in schemas.OPS})

_NATIVE = {"cpu": cpu, "cuda": cuda}


def to_2d(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Move ``axis`` last and flatten the rest: a contiguous (rows, L) tensor."""
    if axis == x.dim() - 1 and x.is_contiguous():  # the common case: a view, no movedim
        return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    rows = math.prod(moved.shape[:-1])
    return moved.contiguous().view(rows, length)


def from_2d(y2d: torch.Tensor, shape, axis: int) -> torch.Tensor:
    """Inverse of :func:`to_2d` for an output whose axis length is ``y2d.shape[1]``."""
    if axis == len(shape) - 1:
        return y2d.reshape(*shape[:-1], y2d.shape[1])
    moved_shape = list(shape)
    moved_shape.pop(axis)
    moved = y2d.reshape(*moved_shape, y2d.shape[1])
    return moved.movedim(-1, axis).contiguous()


def implementation(op: str, t: torch.Tensor, dtype: "torch.dtype | None" = None):
    """The module that runs ``op`` on ``t``'s device under the selected backend (the reference for empty tensors)."""
    if t.numel() == 0:
        return reference
    choice = resolve(FAMILY, op, t.device.type, dtype or t.dtype)
    if choice == "native":
        return _NATIVE[t.device.type]
    if choice == "triton":
        from . import triton as triton_impl  # imported only when Triton is selected

        return triton_impl
    if choice == "nvrtc":
        from . import nvrtc  # imports CuPy only at launch

        return nvrtc
    return reference


def _register(dispatch_key: "str | None", pick) -> None:
    """Register the three MX kernels for ``dispatch_key`` (None: the default kernel of every device)."""

    @torch.library.register_kernel("slimops::mx_quantize", dispatch_key)
    def mx_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed):
        f, ax = schemas.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        impl = pick("mx_quantize", x)
        data, scales = impl.quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic, reference.seed32(seed))
        return from_2d(data, x.shape, ax), from_2d(scales, x.shape, ax)

    @torch.library.register_kernel("slimops::mx_dequantize", dispatch_key)
    def mx_dequantize(data, scales, fmt, block_size, axis, length, dtype):
        f, ax = schemas.check_dequantize_args(data, scales, fmt, block_size, axis, length, dtype)
        scales = scales.view(torch.uint8)
        out_shape = schemas.packed_shape(data.shape, ax, length)
        impl = reference if math.prod(out_shape) == 0 else pick("mx_dequantize", data, dtype)
        out = impl.dequantize_2d(to_2d(data, ax), to_2d(scales, ax), f, block_size, length, dtype)
        return from_2d(out, out_shape, ax)

    @torch.library.register_kernel("slimops::mx_fake_quantize", dispatch_key)
    def mx_fake_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed):
        f, ax = schemas.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        out = pick("mx_fake_quantize", x).fake_quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic,
                                                           reference.seed32(seed))
        return from_2d(out, x.shape, ax)

    # out= variants: the kernel writes straight into the caller's buffers when the blocked axis is
    # their last and they are contiguous (no allocation, no first touch); otherwise through a copy.
    @torch.library.register_kernel("slimops::mx_dequantize_out", dispatch_key)
    def mx_dequantize_out(data, scales, fmt, block_size, axis, length, out):
        f, ax = schemas.check_dequantize_args(data, scales, fmt, block_size, axis, length, out.dtype)
        schemas.check_out(out, schemas.packed_shape(data.shape, ax, length), out.dtype, data.device, "output")
        if out.numel() == 0:
            return
        if ax != out.dim() - 1 or not out.is_contiguous():
            out.copy_(torch.ops.slimops.mx_dequantize(data, scales, fmt, block_size, axis, length, out.dtype))
            return
        impl = pick("mx_dequantize", data, out.dtype)
        impl.dequantize_2d(to_2d(data, ax), to_2d(scales.view(torch.uint8), ax), f, block_size, length, out.dtype,
                           out=out.view(-1, length))

    @torch.library.register_kernel("slimops::mx_quantize_out", dispatch_key)
    def mx_quantize_out(x, fmt, block_size, axis, scale_mode, stochastic, seed, out_data, out_scales):
        f, ax = schemas.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        schemas.check_quantize_out(x, f, ax, block_size, out_data, out_scales)
        if x.numel() == 0:
            return
        out_scales = out_scales.view(torch.uint8)
        if ax != x.dim() - 1 or not (out_data.is_contiguous() and out_scales.is_contiguous()):
            data, scales = torch.ops.slimops.mx_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed)
            out_data.copy_(data)
            out_scales.copy_(scales)
            return
        length = x.shape[-1]
        out2d = (out_data.view(-1, out_data.shape[-1]), out_scales.view(-1, -(-length // block_size)))
        pick("mx_quantize", x).quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic, reference.seed32(seed),
                                           out=out2d)

    @torch.library.register_kernel("slimops::mx_fake_quantize_out", dispatch_key)
    def mx_fake_quantize_out(x, fmt, block_size, axis, scale_mode, stochastic, seed, out):
        f, ax = schemas.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        schemas.check_out(out, x.shape, x.dtype, x.device, "input's")
        if out.numel() == 0:
            return
        if ax != out.dim() - 1 or not out.is_contiguous():
            out.copy_(torch.ops.slimops.mx_fake_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed))
            return
        pick("mx_fake_quantize", x).fake_quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic,
                                                     reference.seed32(seed), out=out.view(-1, x.shape[-1]))


_register(None, lambda op, t, dtype=None: reference)
_register("cpu", implementation)
_register("cuda", implementation)
