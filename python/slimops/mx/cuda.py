"""The MX family's CUDA C++ implementation (``slimops._C_cuda``, built from ``kernels/mx/``) on the canonical layout.

The other CUDA implementation is Triton (``triton.py``); ``slimops.use_backend``
chooses (``dispatch.py``).
"""

from __future__ import annotations

import torch

from .._backend import native_module
from .formats import DTYPE_CODES, SCALE_MODE_CODES, MXFormat


def _C_cuda():
    return native_module("_C_cuda")


def _stream(t: torch.Tensor) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream


def quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                stochastic: bool = False, seed: int = 0, out: "tuple | None" = None):
    rows, length = x2d.shape
    data, scales = out if out is not None else (
        torch.empty(rows, fmt.packed_bytes(length), dtype=torch.uint8, device=x2d.device),
        torch.empty(rows, -(-length // block_size), dtype=torch.uint8, device=x2d.device))
    with torch.cuda.device(x2d.device):
        _C_cuda().mx_quantize(x2d.data_ptr(), DTYPE_CODES[x2d.dtype], rows, length, data.data_ptr(),
                              scales.data_ptr(), fmt.format_id, block_size, SCALE_MODE_CODES[scale_mode],
                              stochastic, seed & 0xFFFFFFFF, _stream(x2d))
    return data, scales


def dequantize_2d(data: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, block_size: int, length: int,
                  dtype: torch.dtype, out: "torch.Tensor | None" = None):
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=dtype, device=data.device) if out is None else out
    with torch.cuda.device(data.device):
        _C_cuda().mx_dequantize(data.data_ptr(), scales.data_ptr(), rows, length, out.data_ptr(),
                                DTYPE_CODES[dtype], fmt.format_id, block_size, _stream(data))
    return out


def fake_quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                     stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None):
    rows, length = x2d.shape
    out = torch.empty_like(x2d) if out is None else out
    with torch.cuda.device(x2d.device):
        _C_cuda().mx_fake_quantize(x2d.data_ptr(), DTYPE_CODES[x2d.dtype], rows, length, out.data_ptr(),
                                   fmt.format_id, block_size, SCALE_MODE_CODES[scale_mode], stochastic,
                                   seed & 0xFFFFFFFF, _stream(x2d))
    return out

