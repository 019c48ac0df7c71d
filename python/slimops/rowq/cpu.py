"""C++ CPU kernels of the per-row integer codec (``slimops._C.rowq_*``, raw pointers), on 2-d fp32 rows."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.reference import seed32
from . import schemas


def quantize(x: torch.Tensor, bits: int, stochastic: bool, seed: int):
    xf = x.float().contiguous()
    rows, length = xf.shape
    data = torch.empty(rows, schemas.packed_row_bytes(length, bits), dtype=torch.uint8)
    params = torch.empty(rows, 2, dtype=torch.float32)
    if rows:
        native_module("_C").rowq_quantize(xf.data_ptr(), rows, length, data.data_ptr(), params.data_ptr(), bits,
                                          bool(stochastic), seed32(seed), torch.get_num_threads())
    return data, params


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype: torch.dtype):
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=torch.float32)
    if rows and length:
        native_module("_C").rowq_dequantize(data.contiguous().data_ptr(), params.contiguous().data_ptr(), rows,
                                            length, out.data_ptr(), bits, torch.get_num_threads())
    return out.to(dtype)


def native_available() -> bool:
    m = native_module("_C")
    return m is not None and hasattr(m, "rowq_quantize")
