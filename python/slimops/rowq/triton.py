"""Triton kernels of the per-row integer codec, one program per row (bit-exact with the reference in the
interpreter; on a GPU the fp32 ops are the same IEEE operations, division through ``div_rn``).

``rowq_quantize``: min / max of the row, ``scale = (max - min) / (2^bits - 1)``, codes
``clamp(floor((x - min) * inv + u))`` with ``u`` from the MX family's hash ``mix32((row * L + j) ^ mix32(seed))``,
packed ``8 / bits`` per byte. ``rowq_dequantize``: ``min + code * scale``.
Used for CUDA tensors (and CPU tensors under ``TRITON_INTERPRET=1`` when the backend is ``"triton"``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..mx.reference import mix32, seed32
from . import schemas


@triton.jit
def _mix32(x):
    x = x ^ (x >> 16)
    x = x * 0x7FEB352D
    x = x ^ (x >> 15)
    x = x * 0x846CA68B
    return x ^ (x >> 16)


@triton.jit(do_not_specialize=["key"])
def _rowq_quantize_kernel(x_ptr, data_ptr, params_ptr, length, packed, key, levels_f,
                          BITS: tl.constexpr, PER: tl.constexpr, NBYTES: tl.constexpr, STOCHASTIC: tl.constexpr):
    r = tl.program_id(0)
    offs = tl.arange(0, NBYTES * PER)
    mask = offs < length
    x = tl.load(x_ptr + r * length + offs, mask=mask, other=0.0)
    mn = tl.min(tl.where(mask, x, float("inf")), axis=0)
    mx = tl.max(tl.where(mask, x, float("-inf")), axis=0)
    has_nan = tl.max(tl.where(mask & (x != x), 1, 0), axis=0) > 0  # a NaN makes min and max NaN (torch.amin)
    mn = tl.where(has_nan, float("nan"), tl.where(length > 0, mn, 0.0)) + 0.0  # + 0: a -0 extreme is +0
    mx = tl.where(has_nan, float("nan"), tl.where(length > 0, mx, 0.0)) + 0.0
    scale = tl.math.div_rn(mx - mn, levels_f)
    safe = tl.where(scale > 0, scale, 1.0)
    inv = tl.where(scale > 0, tl.math.div_rn(1.0, safe), 0.0)
    t = (x - mn) * inv
    if STOCHASTIC:
        idx = (r.to(tl.uint32) * length.to(tl.uint32) + offs.to(tl.uint32)) ^ key.to(tl.uint32, bitcast=True)
        u = (_mix32(idx) >> 8).to(tl.float32) * (1.0 / 16777216.0)
    else:
        u = 0.5
    q = tl.floor(t + u)
    q = tl.where(q >= 0, tl.minimum(q, levels_f), 0.0).to(tl.int32)  # NaN -> code 0
    q = tl.where(mask, q, 0)
    shift = (offs % PER) * BITS
    q2 = tl.reshape(q << shift, (NBYTES, PER))
    byte = tl.sum(q2, axis=1)
    boffs = tl.arange(0, NBYTES)
    tl.store(data_ptr + r * packed + boffs, byte.to(tl.uint8), mask=boffs < packed)
    tl.store(params_ptr + 2 * r, tl.where(mn != mn, float("nan"), mn))  # canonical NaN
    tl.store(params_ptr + 2 * r + 1, tl.where(scale != scale, float("nan"), scale))


@triton.jit
def _rowq_dequantize_kernel(data_ptr, params_ptr, out_ptr, length, packed, BITS: tl.constexpr, PER: tl.constexpr,
                            BLOCK: tl.constexpr):
    r = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < length
    byte = tl.load(data_ptr + r * packed + offs // PER, mask=mask, other=0).to(tl.int32)
    q = (byte >> ((offs % PER) * BITS)) & ((1 << BITS) - 1)
    mn = tl.load(params_ptr + 2 * r)
    scale = tl.load(params_ptr + 2 * r + 1)
    y = mn + q.to(tl.float32) * scale
    tl.store(out_ptr + r * length + offs, tl.where(y != y, float("nan"), y), mask=mask)


def quantize(x: torch.Tensor, bits: int, stochastic: bool, seed: int):
    schemas.check_quantize_args(x, bits)
    xf = x.float().contiguous()
    rows, length = xf.shape
    packed = schemas.packed_row_bytes(length, bits)
    data = torch.empty(rows, packed, dtype=torch.uint8, device=x.device)
    params = torch.empty(rows, 2, dtype=torch.float32, device=x.device)
    if rows:
        per = 8 // bits
        nbytes = triton.next_power_of_2(max(packed, 1))
        key = int(mix32(torch.tensor([seed32(seed)], dtype=torch.int64))[0])
        key -= (1 << 32) if key >= 1 << 31 else 0  # a signed int32 argument: uint32 arithmetic in the kernel
        _rowq_quantize_kernel[(rows,)](xf, data, params, length, packed, key, float((1 << bits) - 1),
                                       BITS=bits, PER=per, NBYTES=nbytes, STOCHASTIC=bool(stochastic))
    return data, params


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype: torch.dtype):
    schemas.check_dequantize_args(data, params, bits, length, dtype)
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=torch.float32, device=data.device)
    if rows and length:
        _rowq_dequantize_kernel[(rows,)](data.contiguous(), params.contiguous(), out, length, data.shape[1],
                                         BITS=bits, PER=8 // bits, BLOCK=triton.next_power_of_2(length))
    return out.to(dtype)
