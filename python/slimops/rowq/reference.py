"""Pure-PyTorch reference of the per-row integer codec: the oracle, and the default kernel (:mod:`.dispatch`)."""

from __future__ import annotations

import torch

from ..mx.reference import random_bits
from . import schemas


def canonical_nan(t: torch.Tensor) -> torch.Tensor:
    """Every NaN as the canonical quiet NaN ``0x7FC00000`` (what a NaN's payload and sign are depends on the
    hardware that made it; the kernels write this one)."""
    return torch.where(t.isnan(), torch.full_like(t, float("nan")), t)


def quantize(x: torch.Tensor, bits: int, stochastic: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    schemas.check_quantize_args(x, bits)
    rows, length = x.shape
    xf = x.float()
    levels = (1 << bits) - 1
    if length == 0:
        mn = torch.zeros(rows, device=x.device)
        mx = mn
    else:
        mn, mx = xf.amin(1) + 0.0, xf.amax(1) + 0.0  # + 0: a -0 extreme is +0 (amin's sign of zero is arbitrary)
    scale = (mx - mn) / levels
    inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
    t = (xf - mn[:, None]) * inv[:, None]
    if stochastic:
        u = (random_bits(seed, rows, length, x.device) >> 8).float() * (1.0 / (1 << 24))
    else:
        u = torch.full_like(t, 0.5)
    q = torch.floor(t + u)
    q = torch.where(q >= 0, q.clamp(max=levels), 0.0).to(torch.uint8)  # NaN (NaN or Inf rows) -> code 0
    per = 8 // bits
    nbytes = schemas.packed_row_bytes(length, bits)
    pad = nbytes * per - length
    if pad:
        q = torch.cat([q, q.new_zeros(rows, pad)], 1)
    q = q.view(rows, nbytes, per).to(torch.int32)
    shifts = torch.arange(per, device=x.device, dtype=torch.int32) * bits
    data = (q << shifts).sum(-1).to(torch.uint8)
    return data, canonical_nan(torch.stack([mn, scale], 1)).contiguous()


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype: torch.dtype) -> torch.Tensor:
    schemas.check_dequantize_args(data, params, bits, length, dtype)
    rows = data.shape[0]
    per = 8 // bits
    shifts = torch.arange(per, device=data.device, dtype=torch.int32) * bits
    q = (data.to(torch.int32)[..., None] >> shifts) & ((1 << bits) - 1)
    q = q.reshape(rows, data.shape[1] * per)[:, :length].float()
    return canonical_nan(params[:, :1] + q * params[:, 1:2]).to(dtype)

