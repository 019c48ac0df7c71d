"""Helpers of the mxgemm tests: random packed weights and the tolerance of ``mx_linear``.

Tolerance (the op's docstring states it): a dequantized MX value is exact in fp32, so the kernels
compute the reference's products and differ from it only in the order of the fp32 sums. The error
of an output is measured against ``truth`` (the result in fp64 of x and the weight's exact values)
in units of its sum of magnitudes S_mn = sum_k |x_mk W_nk|, the scale of every fp32 summation's
error bound (so that rows of large weights do not hide the others). Then, as flash-attention does:

    max_mn |y - truth| / S  <=  2 * max_mn |F.linear(x, dequantize(W, x.dtype), bias) - truth| / S  +  4 * 2^-24

twice the error of today's path (dequantize, then F.linear in x's dtype), plus four fp32 roundings:
without that floor a call whose reference result happens to be exact (common in fp32 with few terms)
would require bit equality, which another order of the same sums does not give; a wrong or missing
term is ~1/K of S, far above it. NaN and Inf must be where ``truth`` (rounded to x's dtype) has them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import slimops
from slimops.mx import reference as mx_reference
from slimops.mx.formats import get_format

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def random_weight(fmt: str, n: int, k: int, block_size: int, seed: int = 0, spread: float = 1.0):
    """A packed [n, k] weight quantized from Gaussian rows of log-normal scales (uint8 data, scales)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(spread * torch.randn(n, 1, generator=g))
    t = slimops.mx.quantize(w, fmt, block_size)
    return t.data, t.scales


def random_codes(fmt: str, n: int, k: int, block_size: int, seed: int = 0, specials: bool = False):
    """Every code at random (the MXINT -2^(b-1) code included), scale bytes in [100, 140]; without
    ``specials`` the fp8 NaN / Inf codes are replaced by zero."""
    f = get_format(fmt)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 1 << f.bits, (n, k), generator=g)
    if not specials and f.has_nan_code:
        mag = codes & ((1 << (f.bits - 1)) - 1)
        bad = mag == 0x7F if f.name == "mxfp8_e4m3" else (mag >> 2) == 31
        codes = torch.where(bad, torch.zeros_like(codes), codes)
    scales = torch.randint(100, 141, (n, -(-k // block_size)), generator=g, dtype=torch.uint8)
    return mx_reference.pack(codes, f.bits), scales


def dequantize(data, scales, fmt, block_size, k, dtype=torch.float32) -> torch.Tensor:
    """The weight's values in ``dtype`` (the MX family's dequantize, bit-exact with its reference on every
    backend: tests/mx)."""
    return slimops.mx.MXTensor(data, scales, fmt, block_size, 1, (data.shape[0], k)).dequantize(dtype)


def run(backend: str, x, data, scales, fmt, block_size, bias=None):
    with slimops.use_backend(backend):
        return torch.ops.slimops.mx_linear(x, data, scales, fmt, block_size, bias)


def assert_linear_close(y, x, data, scales, fmt, block_size, bias=None, what=""):
    """``y`` against the fp64 result within the tolerance of the module docstring, column by column."""
    k = x.shape[-1]
    w = dequantize(data, scales, fmt, block_size, k)
    x2 = x.reshape(-1, k)
    y2 = y.reshape(-1, w.shape[0])
    assert y.dtype == x.dtype and y.shape == (*x.shape[:-1], w.shape[0]), f"{what}: {y.dtype} {tuple(y.shape)}"
    truth = x2.double() @ w.double().T + (0 if bias is None else bias.double())
    ref = F.linear(x2, dequantize(data, scales, fmt, block_size, k, x.dtype), None if bias is None else bias.to(x.dtype))
    want = truth.to(x.dtype)
    odd = ~torch.isfinite(want)
    got_odd = ~torch.isfinite(y2)
    assert torch.equal(odd, got_odd), f"{what}: non-finite outputs at {(odd != got_odd).nonzero()[:8].tolist()}"
    assert torch.equal(torch.isnan(y2[odd]), torch.isnan(want[odd])) and torch.equal(
        y2[odd & ~torch.isnan(want)], want[odd & ~torch.isnan(want)]), f"{what}: NaN / Inf differ"
    fin = ~odd
    mags = x2.double().abs().nan_to_num(0.0, 0.0, 0.0) @ w.double().abs().nan_to_num(0.0, 0.0, 0.0).T + (
        0 if bias is None else bias.double().abs())

    def rel(v):
        e = torch.where(fin & torch.isfinite(v), (v.double() - truth).abs(), torch.zeros_like(truth))
        return torch.where(mags > 0, e / mags.clamp_min(1e-300), torch.where(e > 0, float("inf"), 0.0))

    err, err_ref = rel(y2), rel(ref)
    bound = 2 * err_ref.max() + 4 * 2.0**-24
    if err.max() > bound:
        i, j = divmod(int(err.argmax()), err.shape[1])
        raise AssertionError(f"{what}: output [{i}, {j}]: error {err.max().item():.3e} (in units of its sum of "
                             f"magnitudes) > bound {bound.item():.3e} (reference {err_ref.max().item():.3e})")
