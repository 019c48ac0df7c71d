"""The MX family's C++ CPU implementation (``slimops._C``, built from ``csrc/mx/``) on the canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from .formats import DTYPE_CODES, SCALE_MODE_CODES, MXFormat


def _C():
    return native_module("_C")


def quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                stochastic: bool = False, seed: int = 0, out: "tuple | None" = None):
    rows, length = x2d.shape
    data, scales = out if out is not None else (torch.empty(rows, fmt.packed_bytes(length), dtype=torch.uint8),
                                                torch.empty(rows, -(-length // block_size), dtype=torch.uint8))
    _C().mx_quantize(x2d.data_ptr(), DTYPE_CODES[x2d.dtype], rows, length, data.data_ptr(), scales.data_ptr(),
                     fmt.format_id, block_size, SCALE_MODE_CODES[scale_mode], stochastic, seed & 0xFFFFFFFF,
                     torch.get_num_threads())
    return data, scales


def dequantize_2d(data: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, block_size: int, length: int,
                  dtype: torch.dtype, out: "torch.Tensor | None" = None):
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=dtype) if out is None else out
    _C().mx_dequantize(data.data_ptr(), scales.data_ptr(), rows, length, out.data_ptr(), DTYPE_CODES[dtype],
                       fmt.format_id, block_size, torch.get_num_threads())
    return out


def fake_quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                     stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None):
    rows, length = x2d.shape
    out = torch.empty_like(x2d) if out is None else out
    _C().mx_fake_quantize(x2d.data_ptr(), DTYPE_CODES[x2d.dtype], rows, length, out.data_ptr(),
                          fmt.format_id, block_size, SCALE_MODE_CODES[scale_mode], stochastic, seed & 0xFFFFFFFF,
                          torch.get_num_threads())
    return out

