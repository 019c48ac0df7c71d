"""CUDA C++ kernels of the per-row integer codec (``slimops._C_cuda.rowq_*``: device pointers, current stream)."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.reference import seed32
from . import schemas


def _stream(t: torch.Tensor) -> int:
    return torch.cuda.current_stream(t.device).cuda_stream


def quantize(x: torch.Tensor, bits: int, stochastic: bool, seed: int):
    xf = x.float().contiguous()
    rows, length = xf.shape
    data = torch.empty(rows, schemas.packed_row_bytes(length, bits), dtype=torch.uint8, device=x.device)
    params = torch.empty(rows, 2, dtype=torch.float32, device=x.device)
    if rows:
        with torch.cuda.device(x.device):
            native_module("_C_cuda").rowq_quantize(xf.data_ptr(), rows, length, data.data_ptr(), params.data_ptr(),
                                                   bits, bool(stochastic), seed32(seed), _stream(x))
    return data, params


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype: torch.dtype):
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=torch.float32, device=data.device)
    if rows and length:
        data, params = data.contiguous(), params.contiguous()
        with torch.cuda.device(data.device):
            native_module("_C_cuda").rowq_dequantize(data.data_ptr(), params.data_ptr(), rows, length,
                                                     out.data_ptr(), bits, _stream(data))
    return out.to(dtype)


def native_available() -> bool:
    m = native_module("_C_cuda")
    return m is not None and hasattr(m, "rowq_quantize")
