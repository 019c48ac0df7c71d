"""Helpers of the MX tests: quantize / dequantize under a backend, element codes, hand-made MXTensors."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.mx import reference as ref
from slimops.mx.formats import FORMATS, get_format

try:  # torchao's pure-PyTorch MX path runs on CPU; its CUDA extensions may fail to load (harmless here)
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
    from torchao.prototype.mx_formats.mx_tensor import to_mx
    from torchao.prototype.mx_formats.utils import to_blocked

    TORCHAO_ERROR = None
    TORCHAO_ELEM = {
        "mxfp8_e4m3": torch.float8_e4m3fn,
        "mxfp8_e5m2": torch.float8_e5m2,
        "mxfp6_e3m2": DTYPE_FP6_E3M2,
        "mxfp6_e2m3": DTYPE_FP6_E2M3,
        "mxfp4_e2m1": torch.float4_e2m1fn_x2,
    }
except Exception as exc:  # pragma: no cover - depends on the environment
    TORCHAO_ERROR = f"torchao MX formats not importable: {type(exc).__name__}: {exc}"
    TORCHAO_ELEM = {}
    ScaleCalculationMode = to_mx = to_blocked = None

needs_torchao = pytest.mark.skipif(TORCHAO_ERROR is not None, reason=TORCHAO_ERROR or "")

__all__ = ["ALL_FORMATS", "FP_FORMATS", "INF", "NAN", "ScaleCalculationMode", "TORCHAO_ELEM", "TORCHAO_ERROR",
           "codes_of", "dq", "f32", "make_mx", "needs_torchao", "q", "to_blocked", "to_mx"]

FP_FORMATS = [n for n, f in FORMATS.items() if not f.is_int]
ALL_FORMATS = list(FORMATS)
NAN = float("nan")
INF = float("inf")


def q(x, fmt, block_size=32, axis=-1, backend="reference", **kw):
    with slimops.use_backend(backend):
        return slimops.mx.quantize(x, fmt, block_size, axis, **kw)


def dq(t, dtype=torch.float32, backend="reference"):
    with slimops.use_backend(backend):
        return t.dequantize(dtype)


def codes_of(t) -> torch.Tensor:
    """Element codes (rows, L) int64 of a last-axis MXTensor."""
    f = get_format(t.fmt)
    length = t.shape[-1]
    return ref.unpack(t.data.reshape(-1, t.data.shape[-1]), f.bits, length)


def make_mx(codes, scale_bytes, fmt, block_size=32):
    """An MXTensor built from element codes (rows, L) and scale bytes (rows, nblocks)."""
    f = get_format(fmt)
    codes = torch.as_tensor(codes, dtype=torch.int64)
    if codes.dim() == 1:
        codes = codes[None]
    scales = torch.as_tensor(scale_bytes, dtype=torch.int64).reshape(codes.shape[0], -1).to(torch.uint8)
    return slimops.mx.MXTensor(ref.pack(codes, f.bits), scales, f.name, block_size, 1, codes.shape)


def f32(v) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32)
