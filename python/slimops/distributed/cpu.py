"""C++ CPU kernels of the per-row integer codec (``slimops._C.rowq_*``), registered for the "cpu" dispatch key.

The backend is chosen per call as for every family (``slimops.use_backend``):
native when ``slimops._C`` is built, Triton when asked for (in its interpreter on CPU), else the reference.
"""

from __future__ import annotations

import torch

from .._backend import native_module, resolve
from . import reference, schemas


def _pick():
    choice = resolve("cpu")
    if choice == "triton":
        from . import triton as triton_impl

        return triton_impl
    return None if choice == "native" else reference


def quantize(x: torch.Tensor, bits: int, stochastic: bool, seed: int):
    schemas.check_quantize_args(x, bits)
    other = _pick()
    if other is not None:
        return other.quantize(x, bits, stochastic, seed)
    xf = x.float().contiguous()
    rows, length = xf.shape
    data = torch.empty(rows, schemas.packed_row_bytes(length, bits), dtype=torch.uint8)
    params = torch.empty(rows, 2, dtype=torch.float32)
    if rows:
        native_module("_C").rowq_quantize(xf.data_ptr(), rows, length, data.data_ptr(), params.data_ptr(), bits,
                                          bool(stochastic), seed & 0xFFFFFFFF, torch.get_num_threads())
    return data, params


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype: torch.dtype):
    schemas.check_dequantize_args(data, params, bits, length, dtype)
    other = _pick()
    if other is not None:
        return other.dequantize(data, params, bits, length, dtype)
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=torch.float32)
    if rows and length:
        native_module("_C").rowq_dequantize(data.contiguous().data_ptr(), params.contiguous().data_ptr(), rows,
                                            length, out.data_ptr(), bits, torch.get_num_threads())
    return out.to(dtype)


def native_available() -> bool:
    m = native_module("_C")
    return m is not None and hasattr(m, "rowq_quantize")


if native_available():
    torch.library.register_kernel("slimops::rowq_quantize", "cpu", quantize)
    torch.library.register_kernel("slimops::rowq_dequantize", "cpu", dequantize)
