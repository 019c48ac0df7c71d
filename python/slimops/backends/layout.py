"""Canonical layout shared by every backend, and the op-level kernels built on it.

Each backend implements the MX family on the canonical layout only, a
contiguous ``(rows, L)`` tensor whose last axis is the quantized one, through
three functions ``quantize_2d``, ``dequantize_2d`` and ``fake_quantize_2d``.
:func:`register_mx_kernels` wraps them into op kernels that check the
arguments, move the axis and restore the caller's layout.
"""

from __future__ import annotations

import math

import torch

from .. import _ops
from .._backend import resolve


def to_2d(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Move ``axis`` last and flatten the rest: a contiguous (rows, L) tensor."""
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    rows = math.prod(moved.shape[:-1])
    return moved.contiguous().view(rows, length)


def from_2d(y2d: torch.Tensor, shape, axis: int) -> torch.Tensor:
    """Inverse of :func:`to_2d` for an output whose axis length is ``y2d.shape[1]``."""
    moved_shape = list(shape)
    moved_shape.pop(axis)
    moved = y2d.reshape(*moved_shape, y2d.shape[1])
    return moved.movedim(-1, axis).contiguous()


def register_mx_kernels(dispatch_key: "str | None", pick):
    """Register the three MX ops for ``dispatch_key`` (None: the default kernel for every device).

    ``pick(device_type)`` returns the module with the 2-d implementation to run.
    """
    from ..mx import reference as ref_impl  # the reference handles empty tensors

    def impl_for(t: torch.Tensor):
        return ref_impl if t.numel() == 0 else pick(t.device.type)

    @torch.library.register_kernel("slimops::mx_quantize", dispatch_key)
    def mx_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed):
        f, ax = _ops.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        data, scales = impl_for(x).quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic, seed)
        return from_2d(data, x.shape, ax), from_2d(scales, x.shape, ax)

    @torch.library.register_kernel("slimops::mx_dequantize", dispatch_key)
    def mx_dequantize(data, scales, fmt, block_size, axis, length, dtype):
        f, ax = _ops.check_dequantize_args(data, scales, fmt, block_size, axis, length, dtype)
        scales = scales.view(torch.uint8)
        out_shape = _ops.packed_shape(data.shape, ax, length)
        impl = ref_impl if math.prod(out_shape) == 0 else pick(data.device.type)
        out = impl.dequantize_2d(to_2d(data, ax), to_2d(scales, ax), f, block_size, length, dtype)
        return from_2d(out, out_shape, ax)

    @torch.library.register_kernel("slimops::mx_fake_quantize", dispatch_key)
    def mx_fake_quantize(x, fmt, block_size, axis, scale_mode, stochastic, seed):
        f, ax = _ops.check_quantize_args(x, fmt, block_size, axis, scale_mode)
        out = impl_for(x).fake_quantize_2d(to_2d(x, ax), f, block_size, scale_mode, stochastic, seed)
        return from_2d(out, x.shape, ax)


def implementation(device_type: str, native):
    """The 2-d implementation module for ``device_type`` under the selected backend.

    ``native`` is the calling backend's own module (C++ on CPU, CUDA C++ on CUDA);
    the Triton module is imported only when Triton is selected.
    """
    from ..mx import reference as ref_impl

    choice = resolve(device_type)
    if choice == "native":
        return native
    if choice == "triton":
        from .triton import mx as triton_impl

        return triton_impl
    return ref_impl
