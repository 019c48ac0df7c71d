"""Triton kernels of the MX family on the canonical layout (contiguous ``(rows, L)``, blocks along L).

Bit-exact with ``slimops/mx/reference.py`` (the oracle) and ``kernels/mx_element.cuh``:

* scale byte: ``floor``: ``floor(log2 amax) - emax``; ``rceil``: ``ceil(log2(RN(amax / max)))``;
  clamped to [-127, 127], + 127; 0xFF when amax is NaN/Inf.
* element: ``v = x * 2**-shared_exp`` shifted onto the element grid with nearest-even (or
  stochastic: ``rand = mix32((row*L + j) ^ mix32(seed))``) and saturated; packed little-endian.
* dequantize: ``element * 2**(byte - 127)`` rounded to fp32, then to bf16/fp16 (nearest-even).

Everything is done with integer ops on the fp32 bit patterns (tl.cast(..., bitcast=True)), so
the result does not depend on the GPU's float modes (flush-to-zero, approximate division, FMA
contraction) nor on the interpreter. One program handles ``R`` (row, block) pairs, a tile of
``R x block_size`` elements: the blocks of consecutive rows, contiguous in memory.
"""

from __future__ import annotations

import functools
import math

import torch
import triton
import triton.language as tl

from .._triton import launch as _launch
from . import reference
from .formats import MXFormat

MASK32 = 0xFFFFFFFF
TILE_ELEMS = 2048  # elements per program (R * block_size) on a GPU: 8 per thread
NUM_WARPS = 8
INTERPRET_TILE_ELEMS = 8192  # fewer, larger programs in the interpreter
_IN_KIND = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


# ----------------------------------------------------------------------------- device helpers


@triton.jit
def _flog2_small(m):
    """floor(log2(m)) for int32 0 < m < 2**24 (exact int -> fp32 conversion); m == 0 gives -127."""
    return (tl.cast(m.to(tl.float32), tl.int32, bitcast=True) >> 23) - 127


@triton.jit
def _load_f32_bits(ptr, offs, mask, IN_KIND: tl.constexpr):
    """fp32 bits (int32) of x (fp32, bf16 or fp16: IN_KIND 0, 1, 2), loaded as raw integer bits."""
    if IN_KIND == 0:
        h = tl.load(ptr.to(tl.pointer_type(tl.int32), bitcast=True) + offs, mask=mask, other=0)
    else:
        h = tl.load(ptr.to(tl.pointer_type(tl.int16), bitcast=True) + offs, mask=mask, other=0)
    if IN_KIND == 0:
        bits = h
    elif IN_KIND == 1:
        bits = h.to(tl.int32) << 16
    else:  # fp16 -> fp32 is exact
        bits = tl.cast(tl.cast(h, tl.float16, bitcast=True).to(tl.float32), tl.int32, bitcast=True)
    return bits


@triton.jit
def _mix32(x):
    """'lowbias32' hash on uint32 (wrapping multiplies)."""
    x = x ^ (x >> 16)
    x = x * tl.full([], 0x7FEB352D, tl.uint32)
    x = x ^ (x >> 15)
    x = x * tl.full([], 0x846CA68B, tl.uint32)
    return x ^ (x >> 16)


@triton.jit
def _scale_byte(amax_bits, EMAX: tl.constexpr, RCEIL: tl.constexpr, MB: tl.constexpr, MFL: tl.constexpr):
    """E8M0 byte (int32) from the block amax bits (|x| bits, int32), as reference.shared_exponent.

    rceil needs ceil(log2(RN(a / M))): the fp32 division is emulated exactly with one int64
    division of the 24-bit significands (M = MB * 2**(MFL - 23)), nearest-even, subnormal results
    included, so no float division (approximate on GPUs) is used.
    """
    exp = amax_bits >> 23
    mant = amax_bits & 0x7FFFFF
    nbm = tl.maximum(_flog2_small(mant), 0)
    fl = tl.where(exp > 0, exp - 127, nbm - 149)
    if RCEIL:
        sig = tl.where(exp > 0, mant | 0x800000, mant << tl.minimum(23 - nbm, 23))  # A in [2**23, 2**24)
        small = sig < MB
        num = sig.to(tl.int64) << tl.where(small, 24, 23).to(tl.int64)
        q64 = num // MB
        rem = num - q64 * MB
        q = q64.to(tl.int32)  # in [2**23, 2**24)
        e_d = fl - MFL - small.to(tl.int32)  # floor(log2(a / M))
        # normal quotient: round q to nearest even on the remainder
        up = (2 * rem > MB) | ((2 * rem == MB) & ((q & 1) == 1))
        qr = q + up.to(tl.int32)
        e_norm = e_d + (qr != 0x800000).to(tl.int32)
        # subnormal quotient: round (q + rem/MB) / 2**t onto the 2**-149 grid
        t = tl.minimum(-126 - e_d, 25)
        t = tl.maximum(t, 1)
        n = q >> t
        low = q & ((1 << t) - 1)
        half = 1 << (t - 1)
        up_s = (low > half) | ((low == half) & ((rem > 0) | ((n & 1) == 1)))
        nr = n + up_s.to(tl.int32)
        e_sub = tl.where(nr > 0x400000, -126, -127)
        e = tl.where(e_d >= -126, e_norm, e_sub)
    else:
        e = fl - EMAX
    e = tl.where(amax_bits == 0, -127, tl.minimum(tl.maximum(e, -127), 127))
    return tl.where(amax_bits >= 0x7F800000, 255, e + 127)


@triton.jit
def _encode(xbits, byte, rand, MBITS: tl.constexpr, BIAS: tl.constexpr, MAX_CODE: tl.constexpr,
            NAN_MAG: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr, STOCHASTIC: tl.constexpr):
    """fp32 bits x (int32) and scale byte -> element code (int32), as reference.encode.

    v = x * 2**k (k = 127 - byte) is never formed as a float: floor(log2|v|) = floor(log2|x|) + k and
    v's 24-bit significand is x's (normalized); a v below fp32's normal range gets code 0 either way.
    """
    a = xbits & 0x7FFFFFFF
    exp = a >> 23
    mant = a & 0x7FFFFF
    nbm = tl.maximum(_flog2_small(mant), 0)
    fl = tl.where(exp > 0, exp - 127, tl.where(mant == 0, -1000, nbm - 149))
    sig = tl.where(exp > 0, mant | 0x800000, mant << tl.minimum(23 - nbm, 23))
    ve = fl + (127 - tl.minimum(byte, 254))  # floor(log2|v|)
    te = tl.maximum(ve, 1 - BIAS)
    r = te - MBITS - ve + 23  # >= 23 - MBITS
    rr = tl.minimum(r, 31)
    if STOCHASTIC:
        s = sig.to(tl.uint32) >> tl.minimum(tl.maximum(r - 31, 0), 31).to(tl.uint32)
        rmask = (tl.full([], 1, tl.uint32) << rr.to(tl.uint32)) - 1
        q = ((s + (rand & rmask)) >> rr.to(tl.uint32)).to(tl.int32)
    else:
        q = (sig + (1 << (rr - 1)) - 1 + ((sig >> rr) & 1)) >> rr
    mag = tl.minimum(((te + BIAS - 1) << MBITS) + q, MAX_CODE)
    # NaN-scale block: finite -> (signed) zero, NaN/Inf -> NaN code (fp8) or max
    mag = tl.where(byte == 255, tl.where(a >= 0x7F800000, NAN_MAG, 0), mag)
    neg = xbits < 0
    if IS_INT:
        code = tl.where(neg, -mag, mag) & ((1 << BITS) - 1)
    else:
        code = mag | (neg.to(tl.int32) << (BITS - 1))
    return code


@triton.jit
def _decode(code, byte, MBITS: tl.constexpr, BIAS: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr,
            SPECIAL: tl.constexpr, OUT_KIND: tl.constexpr):
    """Element code (int32) and scale byte -> fp32 bits (int32) of element * 2**(byte - 127), RN.

    The value is m * 2**E with a small integer m; fp32 bits are built directly (nearest-even onto
    the subnormal grid), saturated at the largest finite value of the output dtype OUT_KIND (an
    Inf element, an E5M2 Inf code, stays Inf); every NaN is the canonical 0x7FC00000 (as the
    header's finish_decoded). SPECIAL: 1 = E4M3 NaN code, 2 = E5M2 Inf/NaN codes.
    """
    MAXB: tl.constexpr = 0x7F7FFFFF if OUT_KIND == 0 else (0x7F7F0000 if OUT_KIND == 1 else 0x477FE000)
    if IS_INT:
        sv = code - ((code >> (BITS - 1)) << BITS)
        neg = sv < 0
        m = tl.abs(sv)
        e0 = tl.zeros_like(code) - MBITS
        nan = code < 0  # all False
        inf = code < 0
    else:
        neg = (code >> (BITS - 1)) != 0
        mag = code & ((1 << (BITS - 1)) - 1)
        e = mag >> MBITS
        mant = mag & ((1 << MBITS) - 1)
        m = tl.where(e == 0, mant, mant | (1 << MBITS))
        e0 = tl.maximum(e, 1) - BIAS - MBITS
        if SPECIAL == 1:
            nan = mag == 0x7F
            inf = mag < 0
        elif SPECIAL == 2:
            nan = (e == 31) & (mant != 0)
            inf = (e == 31) & (mant == 0)
        else:
            nan = mag < 0
            inf = mag < 0
    big_e = e0 + byte - 127
    nb = tl.maximum(_flog2_small(m), 0)
    be = nb + big_e + 127
    normal = (be << 23) + ((m << (23 - nb)) & 0x7FFFFF)
    sh = big_e + 149
    t = tl.minimum(tl.maximum(-sh, 1), 31)
    sub_r = (m + (1 << (t - 1)) - 1 + ((m >> t) & 1)) >> t
    sub = tl.where(sh >= 0, m << tl.minimum(tl.maximum(sh, 0), 31), sub_r)
    bits = tl.where(be >= 255, MAXB, tl.where(be >= 1, normal, sub))
    bits = tl.where(bits > MAXB, MAXB, bits)
    bits = tl.where(m == 0, 0, bits)
    bits = tl.where(inf, 0x7F800000, bits)
    bits = bits | (neg.to(tl.int32) << 31)
    return tl.where(nan | (byte == 255), 0x7FC00000, bits)


@triton.jit
def _store_f32_bits(ptr, offs, bits, mask, OUT_KIND: tl.constexpr):
    """Store fp32 bits as fp32 (0), bf16 (1) or fp16 (2) raw bits, nearest-even like torch's .to()."""
    if OUT_KIND == 0:
        tl.store(ptr.to(tl.pointer_type(tl.int32), bitcast=True) + offs, bits, mask=mask)
    elif OUT_KIND == 1:
        u = tl.cast(bits, tl.uint32, bitcast=True)
        nan = (u & 0x7FFFFFFF) > 0x7F800000
        h = tl.where(nan, (u >> 16) | 0x40, (u + 0x7FFF + ((u >> 16) & 1)) >> 16)
        tl.store(ptr.to(tl.pointer_type(tl.int16), bitcast=True) + offs, h.to(tl.int16), mask=mask)
    else:
        a = bits & 0x7FFFFFFF
        sign = (bits >> 16) & 0x8000
        exp = (a >> 23) - 127
        sig = (a & 0x7FFFFF) | 0x800000
        shift = tl.minimum(tl.maximum(-exp - 1, 1), 31)  # subnormal: onto the 2**-24 grid
        q_sub = (sig + (1 << (shift - 1)) - 1 + ((sig >> shift) & 1)) >> shift
        q_sub = tl.where(exp < -25, 0, q_sub)
        q_nrm = ((tl.maximum(exp + 14, 0)) << 10) + ((sig + 0xFFF + ((sig >> 13) & 1)) >> 13)
        h = tl.where(exp < -14, q_sub, q_nrm)
        h = tl.where(a >= 0x477FF000, 0x7C00, h)
        h = tl.where(a > 0x7F800000, 0x7E00, h)
        tl.store(ptr.to(tl.pointer_type(tl.int16), bitcast=True) + offs, (h | sign).to(tl.int16), mask=mask)


@triton.jit
def _tile(pid, npairs, nblocks, L, R: tl.constexpr, BS: tl.constexpr, IDX64: tl.constexpr):
    """(row, block) pairs of this program and their element columns / offsets / mask."""
    if IDX64:  # 64-bit offsets only when some offset needs them
        p = pid.to(tl.int64) * R + tl.arange(0, R).to(tl.int64)
    else:
        p = pid * R + tl.arange(0, R)
    row = p // nblocks
    blk = p - row * nblocks
    col = blk[:, None] * BS + tl.arange(0, BS)[None, :]
    ok = p < npairs
    mask = ok[:, None] & (col < L)
    return p, row, blk, col, ok, mask


@triton.jit
def _block_codes(x_ptr, pid, npairs, nblocks, L, key, R: tl.constexpr, BS: tl.constexpr, IDX64: tl.constexpr,
                 IN_KIND: tl.constexpr, MBITS: tl.constexpr, BIAS: tl.constexpr, EMAX: tl.constexpr,
                 MAX_CODE: tl.constexpr, NAN_MAG: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr,
                 RCEIL: tl.constexpr, MB: tl.constexpr, MFL: tl.constexpr, STOCHASTIC: tl.constexpr):
    """Load a tile, compute the scale bytes ([R]) and element codes ([R, BS])."""
    p, row, blk, col, ok, mask = _tile(pid, npairs, nblocks, L, R, BS, IDX64)
    offs = row[:, None] * L + col
    xbits = _load_f32_bits(x_ptr, offs, mask, IN_KIND)
    amax = tl.max(xbits & 0x7FFFFFFF, axis=1)
    byte = _scale_byte(amax, EMAX, RCEIL, MB, MFL)
    if STOCHASTIC:
        rand = _mix32(offs.to(tl.uint32) ^ key.to(tl.uint32, bitcast=True))
    else:
        rand = xbits.to(tl.uint32)  # unused
    code = _encode(xbits, byte[:, None], rand, MBITS, BIAS, MAX_CODE, NAN_MAG, IS_INT, BITS, STOCHASTIC)
    return p, row, blk, col, ok, mask, offs, byte, code


# ----------------------------------------------------------------------------- kernels


@triton.jit(do_not_specialize=["key"])
def _mx_quantize_kernel(x_ptr, data_ptr, scale_ptr, npairs, nblocks, L, nbytes, key,
                        R: tl.constexpr, BS: tl.constexpr, IDX64: tl.constexpr, IN_KIND: tl.constexpr,
                        MBITS: tl.constexpr, BIAS: tl.constexpr, EMAX: tl.constexpr, MAX_CODE: tl.constexpr,
                        NAN_MAG: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr,
                        RCEIL: tl.constexpr, MB: tl.constexpr, MFL: tl.constexpr, STOCHASTIC: tl.constexpr):
    """x (rows, L) -> packed codes (rows, nbytes) uint8 and scale bytes (rows, nblocks) uint8."""
    pid = tl.program_id(0)
    p, row, blk, col, ok, mask, offs, byte, code = _block_codes(
        x_ptr, pid, npairs, nblocks, L, key, R, BS, IDX64, IN_KIND, MBITS, BIAS, EMAX, MAX_CODE, NAN_MAG,
        IS_INT, BITS, RCEIL, MB, MFL, STOCHASTIC)
    tl.store(scale_ptr + p, byte.to(tl.uint8), mask=ok)
    if BITS == 8:
        tl.store(data_ptr + row[:, None] * nbytes + col, code.to(tl.uint8), mask=mask)
    else:
        PER: tl.constexpr = 2 if BITS == 4 else 4  # elements per group
        GB: tl.constexpr = 1 if BITS != 6 else 3  # bytes per group
        NG: tl.constexpr = BS // PER
        if PER == 2:
            c0, c1 = tl.split(tl.reshape(code, [R, NG, 2]))
            word = c0 | (c1 << BITS)
        else:
            ev, od = tl.split(tl.reshape(code, [R, NG, 2, 2]))  # k = 2i + j: (0, 2), (1, 3)
            c0, c2 = tl.split(ev)
            c1, c3 = tl.split(od)
            word = c0 | (c1 << BITS) | (c2 << (2 * BITS)) | (c3 << (3 * BITS))
        pos = blk[:, None] * (NG * GB) + tl.arange(0, NG)[None, :] * GB  # byte in the row
        base = data_ptr + row[:, None] * nbytes + pos
        for i in tl.static_range(GB):
            tl.store(base + i, ((word >> (8 * i)) & 0xFF).to(tl.uint8), mask=ok[:, None] & (pos + i < nbytes))


@triton.jit
def _mx_dequantize_kernel(data_ptr, scale_ptr, out_ptr, npairs, nblocks, L, nbytes,
                          R: tl.constexpr, BS: tl.constexpr, IDX64: tl.constexpr, OUT_KIND: tl.constexpr,
                          MBITS: tl.constexpr, BIAS: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr,
                          SPECIAL: tl.constexpr):
    """Packed codes (rows, nbytes) + scale bytes (rows, nblocks) -> (rows, L) values (raw bits)."""
    pid = tl.program_id(0)
    p, row, blk, col, ok, mask = _tile(pid, npairs, nblocks, L, R, BS, IDX64)
    byte = tl.load(scale_ptr + p, mask=ok, other=0).to(tl.int32)
    if BITS == 8:
        code = tl.load(data_ptr + row[:, None] * nbytes + col, mask=mask, other=0).to(tl.int32)
    else:
        PER: tl.constexpr = 2 if BITS == 4 else 4
        GB: tl.constexpr = 1 if BITS != 6 else 3
        NG: tl.constexpr = BS // PER
        pos = blk[:, None] * (NG * GB) + tl.arange(0, NG)[None, :] * GB
        base = data_ptr + row[:, None] * nbytes + pos
        word = tl.zeros([R, NG], tl.int32)
        for i in tl.static_range(GB):
            b = tl.load(base + i, mask=ok[:, None] & (pos + i < nbytes), other=0).to(tl.int32)
            word = word | (b << (8 * i))
        cm = (1 << BITS) - 1
        if PER == 2:
            code = tl.reshape(tl.join(word & cm, (word >> BITS) & cm), [R, BS])
        else:
            ev = tl.join(word & cm, (word >> (2 * BITS)) & cm)
            od = tl.join((word >> BITS) & cm, (word >> (3 * BITS)) & cm)
            code = tl.reshape(tl.join(ev, od), [R, BS])
    bits = _decode(code, byte[:, None], MBITS, BIAS, IS_INT, BITS, SPECIAL, OUT_KIND)
    _store_f32_bits(out_ptr, row[:, None] * L + col, bits, mask, OUT_KIND)


@triton.jit(do_not_specialize=["key"])
def _mx_fake_quantize_kernel(x_ptr, out_ptr, npairs, nblocks, L, key,
                             R: tl.constexpr, BS: tl.constexpr, IDX64: tl.constexpr, IN_KIND: tl.constexpr,
                             MBITS: tl.constexpr, BIAS: tl.constexpr, EMAX: tl.constexpr, MAX_CODE: tl.constexpr,
                             NAN_MAG: tl.constexpr, IS_INT: tl.constexpr, BITS: tl.constexpr,
                             RCEIL: tl.constexpr, MB: tl.constexpr, MFL: tl.constexpr, STOCHASTIC: tl.constexpr,
                             SPECIAL: tl.constexpr):
    """x (rows, L) -> dequantize(quantize(x)) in x's dtype (raw bits), without packing."""
    pid = tl.program_id(0)
    p, row, blk, col, ok, mask, offs, byte, code = _block_codes(
        x_ptr, pid, npairs, nblocks, L, key, R, BS, IDX64, IN_KIND, MBITS, BIAS, EMAX, MAX_CODE, NAN_MAG,
        IS_INT, BITS, RCEIL, MB, MFL, STOCHASTIC)
    bits = _decode(code, byte[:, None], MBITS, BIAS, IS_INT, BITS, SPECIAL, IN_KIND)
    _store_f32_bits(out_ptr, offs, bits, mask, IN_KIND)


# ----------------------------------------------------------------------------- host side



def _seed_key(seed: int) -> int:
    """mix32(seed mod 2**32) as a signed int32 (one kernel argument type for every seed)."""
    x = int(reference.mix32(torch.tensor([seed & MASK32], dtype=torch.int64))[0])
    return x - (1 << 32) if x >= 1 << 31 else x


@functools.lru_cache(maxsize=None)
def _fmt_meta(fmt: MXFormat) -> tuple[dict, int]:
    special = {"mxfp8_e4m3": 1, "mxfp8_e5m2": 2}.get(fmt.name, 0)
    return dict(MBITS=fmt.mbits, BIAS=fmt.bias, IS_INT=fmt.is_int, BITS=fmt.bits), special


@functools.lru_cache(maxsize=None)
def _quant_meta(fmt: MXFormat, scale_mode: str, stochastic: bool) -> dict:
    frac, exp = math.frexp(fmt.max_value)  # max_value = MB * 2**(MFL - 23), MB its 24-bit significand
    mb, mfl = int(frac * 2**24), exp - 1
    assert mb * 2.0 ** (mfl - 23) == fmt.max_value
    return dict(_fmt_meta(fmt)[0], EMAX=fmt.emax, MAX_CODE=fmt.max_code,
                NAN_MAG=0x7F if fmt.has_nan_code else fmt.max_code, RCEIL=scale_mode == "rceil", MB=mb, MFL=mfl,
                STOCHASTIC=bool(stochastic))


def _tiling(npairs: int, rows: int, length: int, block_size: int, device: torch.device) -> tuple[tuple, dict]:
    """Pairs per program R (a power of two), the grid and the launch meta."""
    tile = TILE_ELEMS if device.type == "cuda" else INTERPRET_TILE_ELEMS
    r = max(1, min(tile // block_size, triton.next_power_of_2(max(npairs, 1))))
    idx64 = (rows + 1) * (length + 2 * block_size) >= 2**31
    return (triton.cdiv(npairs, r),), dict(R=r, BS=block_size, IDX64=idx64, num_warps=NUM_WARPS)


def quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                stochastic: bool = False, seed: int = 0, out: "tuple | None" = None):
    """(rows, L) fp32/bf16/fp16 -> (packed data uint8 (rows, packed_bytes(L)), scales uint8 (rows, nblocks)),
    into ``out`` (contiguous) when given."""
    x2d = x2d.contiguous()
    rows, length = x2d.shape
    nblocks = -(-length // block_size)
    nbytes = fmt.packed_bytes(length)
    data, scales = out if out is not None else (
        torch.empty(rows, nbytes, dtype=torch.uint8, device=x2d.device),
        torch.empty(rows, nblocks, dtype=torch.uint8, device=x2d.device))
    npairs = rows * nblocks
    if npairs == 0:
        return data.zero_(), scales
    grid, meta = _tiling(npairs, rows, length, block_size, x2d.device)
    _launch(_mx_quantize_kernel, grid, x2d.device, x2d, data, scales, npairs, nblocks, length,
            nbytes, _seed_key(seed), IN_KIND=_IN_KIND[x2d.dtype], **meta,
            **_quant_meta(fmt, scale_mode, stochastic))
    return data, scales


def dequantize_2d(data: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, block_size: int, length: int,
                  dtype: torch.dtype, out: "torch.Tensor | None" = None):
    """(packed data, scales) -> (rows, length) ``dtype`` values ``element * 2**(byte - 127)``."""
    data, scales = data.contiguous(), scales.contiguous()
    if scales.dtype != torch.uint8:  # float8_e8m0fnu: the same bytes
        scales = scales.view(torch.uint8)
    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=dtype, device=data.device) if out is None else out
    nblocks = -(-length // block_size)
    npairs = rows * nblocks
    if npairs == 0:
        return out
    grid, meta = _tiling(npairs, rows, length, block_size, data.device)
    base, special = _fmt_meta(fmt)
    _launch(_mx_dequantize_kernel, grid, data.device, data, scales, out, npairs, nblocks, length,
            data.shape[1], OUT_KIND=_IN_KIND[dtype], SPECIAL=special, **meta, **base)
    return out


def fake_quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                     stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None):
    """Quantize then dequantize in one pass, in x2d's dtype (into ``out`` when given)."""
    x2d = x2d.contiguous()
    rows, length = x2d.shape
    out = torch.empty_like(x2d) if out is None else out
    nblocks = -(-length // block_size)
    npairs = rows * nblocks
    if npairs == 0:
        return out
    grid, meta = _tiling(npairs, rows, length, block_size, x2d.device)
    _, special = _fmt_meta(fmt)
    _launch(_mx_fake_quantize_kernel, grid, x2d.device, x2d, out, npairs, nblocks, length,
            _seed_key(seed), IN_KIND=_IN_KIND[x2d.dtype], SPECIAL=special, **meta,
            **_quant_meta(fmt, scale_mode, stochastic))
    return out
