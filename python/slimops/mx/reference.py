"""Pure-PyTorch reference of MX quantize / dequantize: the oracle of every test.

Written for clarity, on any device, on the same element grid as the shared
header ``kernels/mx_element.cuh`` that the C++ and CUDA kernels use (the header
rounds to nearest-even with an fp32 add of 2**23, this file with integer shifts;
both are exact, and the tests hold every kernel bit-equal to this file). Everything works on the *canonical layout*: the quantized axis moved last
and the rest flattened into rows, ``x2d`` of shape ``(rows, L)``.

Scale (one E8M0 byte per block of ``block_size`` elements, OCP MX v1.0 §6.3):

* ``floor``: ``shared_exp = floor(log2(amax)) - emax_elem`` (exact, from the fp32
  bits, fp32 subnormals included), clamped to [-127, 127].
* ``rceil``: ``shared_exp = ceil(log2(amax / max_elem))`` (NVIDIA's), clamped.
* byte = ``shared_exp + 127``; amax == 0 gives byte 0; an amax that is NaN or
  ±Inf gives 0xFF (NaN), and the whole block dequantizes to NaN.

Element: ``v = x * 2**-shared_exp`` (exact in fp32), rounded to the element grid
(nearest-even by default, or stochastic with a counter-based hash of
``(seed, row * L + j)``), saturating at the format's max.
"""

from __future__ import annotations

import torch

from .formats import E8M0_BIAS, E8M0_NAN, MXFormat

MASK32 = 0xFFFFFFFF


# ----------------------------------------------------------------------------- bits


def f32_bits(x: torch.Tensor) -> torch.Tensor:
    """fp32 -> its bit pattern as a non-negative int64."""
    return x.contiguous().view(torch.int32).to(torch.int64) & MASK32


def bits_f32(u: torch.Tensor) -> torch.Tensor:
    """Low 32 bits of an int64 tensor -> fp32 with that bit pattern."""
    u = u & MASK32
    u = torch.where(u >= 2**31, u - 2**32, u)
    return u.to(torch.int32).view(torch.float32)


def exp2_f32(e: torch.Tensor) -> torch.Tensor:
    """Exactly ``2**e`` in fp32 for integer ``e`` in [-149, 127]."""
    e = e.to(torch.int64)
    normal = ((e + 127).clamp(min=1) << 23)
    subnormal = torch.ones_like(e) << (e + 149).clamp(0, 22)
    return bits_f32(torch.where(e >= -126, normal, subnormal))


def floor_log2(a: torch.Tensor) -> torch.Tensor:
    """floor(log2(a)) for finite a > 0 in fp32, exact, subnormals included.

    a == 0 gives -1000 (any value that clamps to the E8M0 minimum).
    """
    u = f32_bits(a) & 0x7FFFFFFF
    exp = u >> 23
    mant = u & 0x7FFFFF
    # For a subnormal, float(mant) is exact and its exponent field is floor(log2(mant)).
    sub = ((f32_bits(mant.to(torch.float32)) >> 23) - 127) - 149
    out = torch.where(exp > 0, exp - 127, sub)
    return torch.where(u == 0, torch.full_like(out, -1000), out)


def ceil_log2(a: torch.Tensor) -> torch.Tensor:
    """ceil(log2(a)) for finite a > 0 in fp32, exact; a == 0 gives -1000."""
    u = f32_bits(a) & 0x7FFFFFFF
    exp = u >> 23
    mant = u & 0x7FFFFF
    pow2 = torch.where(exp > 0, mant == 0, (mant & (mant - 1)) == 0)
    fl = floor_log2(a)
    return torch.where(pow2 | (u == 0), fl, fl + 1)


def mix32(x: torch.Tensor) -> torch.Tensor:
    """The 'lowbias32' integer hash (C. Wellons), on uint32 values held in int64."""
    x = x & MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def seed32(seed: int) -> int:
    """The 32-bit key material of a 64-bit seed: ``lo ^ mix32(hi)`` of its two's-complement halves,
    ``lo`` itself when ``hi`` is 0 (seeds in [0, 2**32) unchanged). Every backend takes this value."""
    lo, hi = seed & MASK32, (seed >> 32) & MASK32
    return lo if hi == 0 else lo ^ int(mix32(torch.tensor([hi], dtype=torch.int64))[0])


def random_bits(seed: int, rows: int, length: int, device) -> torch.Tensor:
    """32 random bits per element: ``mix32((row * L + j) ^ mix32(seed32(seed)))`` (uint32 wrap)."""
    key = int(mix32(torch.tensor([seed32(seed)], dtype=torch.int64))[0])
    idx = torch.arange(rows * length, device=device, dtype=torch.int64).view(rows, length)
    return mix32((idx & MASK32) ^ key)


# ----------------------------------------------------------------------------- scale


def shared_exponent(amax: torch.Tensor, fmt: MXFormat, scale_mode: str) -> torch.Tensor:
    """E8M0 scale bytes (int64, 0..255) for fp32 block amaxes."""
    finite = torch.isfinite(amax)
    a = torch.where(finite, amax, torch.zeros_like(amax))
    if scale_mode == "floor":
        e = floor_log2(a) - fmt.emax
    else:  # rceil: ceil(log2(amax / max_elem)), the division rounded in fp32
        e = ceil_log2(a / fmt.max_value)
    byte = e.clamp(-E8M0_BIAS, E8M0_BIAS) + E8M0_BIAS
    return torch.where(finite, byte, torch.full_like(byte, E8M0_NAN))


# ----------------------------------------------------------------------------- elements


def encode_magnitude(v: torch.Tensor, fmt: MXFormat, rand: torch.Tensor | None) -> torch.Tensor:
    """|v| (fp32, finite) -> magnitude code, saturated at ``fmt.max_code``.

    The element grid's quantum at exponent ``te = max(floor(log2|v|), 1 - bias)``
    is ``2**(te - mbits)``; the fp32 significand is shifted right by ``r`` with
    round-to-nearest-even (or adding ``r`` random bits first, at most 31, for
    stochastic rounding). ``((te + bias - 1) << mbits) + q`` is then the code, carry into
    the exponent included.
    """
    u = f32_bits(v) & 0x7FFFFFFF
    exp32 = u >> 23
    sig = (u & 0x7FFFFF) | ((exp32 > 0).to(torch.int64) << 23)
    e_eff = exp32.clamp(min=1)
    te = torch.clamp(e_eff - 127, min=1 - fmt.bias)
    r = te - fmt.mbits - e_eff + 150
    if rand is None:
        r = r.clamp(max=31)
        q = (sig + (1 << (r - 1)) - 1 + ((sig >> r) & 1)) >> r
    else:
        # 31 random bits at most: beyond that, drop the significand's low bits first,
        # so that P(round up) stays sig / 2**r (to 2**-31).
        sig = sig >> (r - 31).clamp(0, 31)
        r = r.clamp(max=31)
        q = (sig + (rand & ((1 << r) - 1))) >> r
    code = ((te + fmt.bias - 1) << fmt.mbits) + q
    return code.clamp(max=fmt.max_code)


def decode_magnitude(code: torch.Tensor, fmt: MXFormat) -> torch.Tensor:
    """Magnitude code (int64, sign excluded) -> fp32 element value (NaN/Inf codes of fp8 included)."""
    m = fmt.mbits
    if fmt.is_int:
        return code.to(torch.float32) * 2.0 ** (-m)
    e = code >> m
    mant = code & ((1 << m) - 1)
    sub = mant.to(torch.float32) * exp2_f32(torch.full_like(e, 1 - fmt.bias - m))
    nrm = (mant + (1 << m)).to(torch.float32) * exp2_f32(e - fmt.bias - m)
    val = torch.where(e == 0, sub, nrm)
    if fmt.name == "mxfp8_e4m3":
        val = torch.where(code == 0x7F, torch.full_like(val, float("nan")), val)
    elif fmt.name == "mxfp8_e5m2":
        special = torch.where(mant == 0, float("inf"), float("nan"))
        val = torch.where(e == 31, special, val)
    return val


def encode(x2d: torch.Tensor, scale_bytes: torch.Tensor, fmt: MXFormat, block_size: int,
           rand: torch.Tensor | None) -> torch.Tensor:
    """fp32 (rows, L) and per-block scale bytes -> element codes (rows, L), int64 in [0, 2**bits)."""
    rows, length = x2d.shape
    byte = scale_bytes.repeat_interleave(block_size, dim=1)[:, :length]
    nan_block = byte == E8M0_NAN
    v = x2d * exp2_f32(E8M0_BIAS - byte.clamp(max=254))
    sign = (f32_bits(x2d) >> 31).to(torch.bool)
    mag = encode_magnitude(v, fmt, rand)
    # In a NaN-scale block the element bits carry no value: finite elements are
    # stored as (signed) zero, NaN/Inf elements as the NaN code (fp8) or the max.
    nonfinite = ~torch.isfinite(x2d)
    nan_mag = torch.full_like(mag, 0x7F if fmt.has_nan_code else fmt.max_code)
    mag = torch.where(nan_block, torch.where(nonfinite, nan_mag, torch.zeros_like(mag)), mag)
    if fmt.is_int:
        return torch.where(sign, -mag, mag) & ((1 << fmt.bits) - 1)
    return mag | (sign.to(torch.int64) << (fmt.bits - 1))


def decode(codes: torch.Tensor, scale_bytes: torch.Tensor, fmt: MXFormat, block_size: int) -> torch.Tensor:
    """Element codes (rows, L) and scale bytes -> fp32 values ``element * 2**(byte - 127)``."""
    length = codes.shape[1]
    byte = scale_bytes.to(torch.int64).repeat_interleave(block_size, dim=1)[:, :length]
    if fmt.is_int:
        signed = torch.where(codes >= (1 << (fmt.bits - 1)), codes - (1 << fmt.bits), codes)
        val = signed.to(torch.float32) * 2.0 ** (-fmt.mbits)
    else:
        sign_bit = 1 << (fmt.bits - 1)
        val = decode_magnitude(codes & (sign_bit - 1), fmt)
        val = torch.where((codes & sign_bit) != 0, -val, val)
    scale = exp2_f32(byte.clamp(max=254) - E8M0_BIAS)
    out = val * scale
    return torch.where(byte == E8M0_NAN, torch.full_like(out, float("nan")), out)


# ----------------------------------------------------------------------------- packing


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes (rows, L) -> uint8 (rows, ceil(L*bits/8)): a little-endian bit stream per row."""
    rows, length = codes.shape
    nbytes = (length * bits + 7) // 8
    if bits == 8:
        return codes.to(torch.uint8)
    if codes.numel() == 0:
        return torch.zeros(rows, nbytes, dtype=torch.uint8, device=codes.device)
    per = {4: 2, 6: 4, 2: 4}[bits]
    pad = (-length) % per
    c = torch.nn.functional.pad(codes, (0, pad)).view(rows, -1, per)
    word = torch.zeros_like(c[..., 0])
    for k in range(per):
        word = word | (c[..., k] << (k * bits))
    group_bytes = per * bits // 8
    out = torch.stack([(word >> (8 * k)) & 0xFF for k in range(group_bytes)], dim=-1)
    return out.reshape(rows, -1)[:, :nbytes].to(torch.uint8)


def unpack(data: torch.Tensor, bits: int, length: int) -> torch.Tensor:
    """Inverse of :func:`pack`: uint8 (rows, nbytes) -> codes (rows, length) as int64."""
    rows = data.shape[0]
    d = data.to(torch.int64)
    if bits == 8:
        return d[:, :length]
    if rows * length == 0:
        return torch.zeros(rows, length, dtype=torch.int64, device=data.device)
    per = {4: 2, 6: 4, 2: 4}[bits]
    group_bytes = per * bits // 8
    ngroups = -(-length // per)
    d = torch.nn.functional.pad(d, (0, ngroups * group_bytes - d.shape[1])).view(rows, ngroups, group_bytes)
    word = torch.zeros_like(d[..., 0])
    for k in range(group_bytes):
        word = word | (d[..., k] << (8 * k))
    codes = torch.stack([(word >> (k * bits)) & ((1 << bits) - 1) for k in range(per)], dim=-1)
    return codes.reshape(rows, -1)[:, :length]


# ----------------------------------------------------------------------------- ops


def quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                stochastic: bool = False, seed: int = 0, out: "tuple | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, L) float -> (packed data uint8 (rows, nbytes), scales uint8 (rows, nblocks)), into ``out``
    (a pair of such tensors) when given."""
    rows, length = x2d.shape
    x = x2d.to(torch.float32)
    nblocks = -(-length // block_size)
    padded = torch.nn.functional.pad(x, (0, nblocks * block_size - length))
    amax = padded.view(rows, nblocks, block_size).abs().amax(dim=-1) if rows * nblocks else \
        torch.zeros(rows, nblocks, dtype=torch.float32, device=x.device)
    scale_bytes = shared_exponent(amax, fmt, scale_mode)
    rand = random_bits(seed, rows, length, x.device) if stochastic else None
    codes = encode(x, scale_bytes, fmt, block_size, rand)
    if out is not None:
        out[0].copy_(pack(codes, fmt.bits))
        out[1].copy_(scale_bytes.to(torch.uint8))
        return out
    return pack(codes, fmt.bits), scale_bytes.to(torch.uint8)


# The largest finite value of each output dtype, and its canonical quiet NaN bits.
MAX_FINITE = {torch.float32: torch.finfo(torch.float32).max, torch.bfloat16: torch.finfo(torch.bfloat16).max,
              torch.float16: torch.finfo(torch.float16).max}
CANONICAL_NAN = {torch.float32: (torch.int32, 0x7FC00000), torch.bfloat16: (torch.int16, 0x7FC0),
                 torch.float16: (torch.int16, 0x7E00)}


def finish(values: torch.Tensor, elements_inf: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """fp32 decoded values -> ``dtype``: nearest even, a finite element saturated at ``dtype``'s
    largest finite value (an RCEIL scale near the top of a range must not turn a finite input into
    Inf; an Inf element, an E5M2 Inf code, stays Inf), every NaN the canonical quiet NaN."""
    big = MAX_FINITE[dtype]
    out = values.to(dtype)
    out = torch.where(out.isinf() & ~elements_inf, torch.full_like(out, big).copysign(values.to(dtype)), out)
    ints, nan_bits = CANONICAL_NAN[dtype]
    nan = torch.full(out.shape, nan_bits if nan_bits < 2 ** (8 * out.element_size() - 1)
                     else nan_bits - 2 ** (8 * out.element_size()), dtype=ints, device=out.device).view(dtype)
    return torch.where(out.isnan(), nan, out)


def dequantize_2d(data: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, block_size: int,
                  length: int, dtype: torch.dtype, out: "torch.Tensor | None" = None) -> torch.Tensor:
    """(packed data, scales) in the canonical layout -> (rows, length) of ``dtype`` (see :func:`finish`)."""
    codes = unpack(data, fmt.bits, length)
    values = decode(codes, scales, fmt, block_size)
    elements_inf = decode(codes, torch.full_like(scales, E8M0_BIAS), fmt, block_size).isinf()
    res = finish(values, elements_inf, dtype)
    return res if out is None else out.copy_(res)


def fake_quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                     stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None) -> torch.Tensor:
    """Quantize then dequantize, back in the input's dtype (into ``out`` when given)."""
    data, scales = quantize_2d(x2d, fmt, block_size, scale_mode, stochastic, seed)
    return dequantize_2d(data, scales, fmt, block_size, x2d.shape[1], x2d.dtype, out)
