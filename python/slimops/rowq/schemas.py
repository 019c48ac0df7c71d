"""Ops of the rowq family: the per-row stochastic integer codec (AdaQP's), with fake kernels and checks.

``rowq_quantize(x, bits, stochastic, seed) -> (data, params)``: for each row of a
2-d float tensor, ``params[r] = (min, scale)`` in fp32 with ``scale = (max - min) /
(2^bits - 1)``, and each element becomes ``q = floor((x - min) / scale + u)``
clamped to ``[0, 2^bits - 1]``, with ``u`` uniform in [0, 1) (stochastic, from
the MX family's counter-based hash of ``(seed, row * L + j)``, so unbiased) or
``u = 0.5`` (round to nearest). ``data`` packs the codes little-endian per row,
``8 / bits`` per byte: shape ``(rows, ceil(L * bits / 8))`` uint8. A row holding
NaN gets ``min = scale = NaN`` (as ``torch.amin`` / ``amax``), a zero min or max is
+0; an element whose
``floor`` is NaN (NaN rows, rows with ±Inf) gets code 0. The seed is any int64,
all 64 bits counting (folded to 32 as the MX family folds it).
``rowq_dequantize(data, params, bits, length, dtype)`` returns ``min + q * scale``.
Error per element: below ``scale`` (stochastic) or ``scale / 2`` (nearest), up to fp32 rounding.
"""

from __future__ import annotations

import torch

from .._library import FLOAT_DTYPES, lib

BITS = (2, 4, 8)
OPS = ("rowq_quantize", "rowq_dequantize")

lib.define("rowq_quantize(Tensor x, int bits, bool stochastic, int seed) -> (Tensor data, Tensor params)")
lib.define("rowq_dequantize(Tensor data, Tensor params, int bits, int length, ScalarType dtype) -> Tensor")


def _check(cond: bool, exc: type, msg: str) -> None:
    if not cond:
        raise exc(msg)


def packed_row_bytes(length: int, bits: int) -> int:
    return -(-length * bits // 8)


def check_quantize_args(x: torch.Tensor, bits: int) -> None:
    _check(isinstance(x, torch.Tensor), TypeError, f"x must be a torch.Tensor, got {type(x).__name__}")
    _check(x.dtype in FLOAT_DTYPES, TypeError, f"x must be float32, bfloat16 or float16, got {x.dtype}")
    _check(x.dim() == 2, ValueError, f"x must be 2-d (rows, features), got shape {list(x.shape)}")
    _check(bits in BITS, ValueError, f"bits must be one of {BITS}, got {bits!r}")


def check_dequantize_args(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype) -> None:
    _check(bits in BITS, ValueError, f"bits must be one of {BITS}, got {bits!r}")
    _check(data.dtype == torch.uint8, TypeError, f"data must be uint8 (packed codes), got {data.dtype}")
    _check(params.dtype == torch.float32, TypeError, f"params must be float32 (min, scale per row), got {params.dtype}")
    _check(dtype in FLOAT_DTYPES, TypeError, f"dtype must be float32, bfloat16 or float16, got {dtype}")
    _check(isinstance(length, int) and length >= 0, ValueError, f"length must be a non-negative int, got {length!r}")
    _check(data.dim() == 2 and data.shape[1] == packed_row_bytes(length, bits), ValueError,
           f"data has shape {list(data.shape)}, expected (rows, {packed_row_bytes(length, bits)}) for {length} "
           f"{bits}-bit codes per row")
    _check(list(params.shape) == [data.shape[0], 2], ValueError,
           f"params has shape {list(params.shape)}, expected [{data.shape[0]}, 2] (min, scale per row)")
    _check(data.device == params.device, ValueError,
           f"data and params must be on the same device, got {data.device} and {params.device}")


@torch.library.register_fake("slimops::rowq_quantize")
def _rowq_quantize_fake(x, bits, stochastic, seed):
    check_quantize_args(x, bits)
    rows, length = x.shape
    return (x.new_empty((rows, packed_row_bytes(length, bits)), dtype=torch.uint8),
            x.new_empty((rows, 2), dtype=torch.float32))


@torch.library.register_fake("slimops::rowq_dequantize")
def _rowq_dequantize_fake(data, params, bits, length, dtype):
    check_dequantize_args(data, params, bits, length, dtype)
    return data.new_empty((data.shape[0], length), dtype=dtype)
