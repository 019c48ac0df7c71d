"""The MX reference (the oracle of every kernel test) against the OCP MX v1.0 rules, by hand.

(c) hand-computed codes, scale bytes and byte layouts for edge values of every format;
(e) ``swizzle_scales`` against torchao's ``to_blocked``.
(a) and (b), torchao and the departures from it, are in ``test_mx_torchao.py``;
(d), the hypothesis properties, in ``test_mx_properties.py``.

Edge-value tests (c) also run on every CPU backend, since they are cheap and pin the
kernels to hand-computed answers, not only to the reference.
"""

from __future__ import annotations

import math

import pytest
import torch

import slimops
from slimops.mx import reference as ref
from slimops.mx.formats import FORMATS
from slimops.testing import assert_bits_equal, cpu_backends

from .mx_helpers import ALL_FORMATS, INF, NAN, codes_of, dq, f32, make_mx, needs_torchao, q, to_blocked

# ============================================================================ (c) hand-computed


# (anchor, [(value, code), ...]): the anchor fixes the block's scale byte at 127 (shared_exp 0).
HAND_CODES = {
    "mxfp8_e4m3": (448.0, [
        (448.0, 0x7E), (-448.0, 0xFE), (0.0, 0x00), (-0.0, 0x80),
        (464.0, 0x7E),  # tie 448/480 -> even 448
        (479.9, 0x7E), (500.0, 0x7E), (-511.0, 0xFE),  # above max: saturate
        (2.0**-9, 0x01), (2.0**-10, 0x00), (-(2.0**-10), 0x80),  # min subnormal; half: tie to even 0
        (1.5 * 2.0**-9, 0x02), (2.5 * 2.0**-9, 0x02), (7 * 2.0**-9, 0x07), (2.0**-6, 0x08),
        (1.0, 0x38), (1.0625, 0x38), (1.1875, 0x3A), (-1.1875, 0xBA),
        (240.0, 0x77), (248.0, 0x78),  # tie rounds up, carrying into the exponent
    ]),
    "mxfp8_e5m2": (57344.0, [
        (57344.0, 0x7B), (-57344.0, 0xFB), (0.0, 0x00), (-0.0, 0x80),
        (61440.0, 0x7B), (65000.0, 0x7B), (-65535.0, 0xFB),  # never the Inf code 0x7C
        (2.0**-16, 0x01), (2.0**-17, 0x00), (-(2.0**-17), 0x80), (3 * 2.0**-17, 0x02), (2.0**-14, 0x04),
        (1.0, 0x3C), (1.125, 0x3C), (1.375, 0x3E), (-1.375, 0xBE),
        (0.875 * 2.0**-14, 0x04),  # tie 3/4 subnormal -> even code 4 (the min normal)
    ]),
    "mxfp6_e3m2": (28.0, [
        (28.0, 0x1F), (-28.0, 0x3F), (0.0, 0x00), (-0.0, 0x20),
        (30.0, 0x1F), (31.9, 0x1F), (-31.0, 0x3F),
        (0.0625, 0x01), (0.03125, 0x00), (-0.03125, 0x20), (0.09375, 0x02), (0.25, 0x04),
        (1.0, 0x0C), (1.125, 0x0C), (1.375, 0x0E), (14.0, 0x1B), (15.0, 0x1C),
    ]),
    "mxfp6_e2m3": (7.5, [
        (7.5, 0x1F), (-7.5, 0x3F), (0.0, 0x00), (-0.0, 0x20),
        (7.75, 0x1F), (7.99, 0x1F), (-7.9, 0x3F),
        (0.125, 0x01), (0.0625, 0x00), (-0.0625, 0x20), (0.1875, 0x02), (0.3125, 0x02),
        (0.875, 0x07), (0.9375, 0x08), (1.0, 0x08), (3.75, 0x17), (3.875, 0x18), (-1.0625, 0x28),
    ]),
    "mxfp4_e2m1": (6.0, [
        (6.0, 0x7), (-6.0, 0xF), (0.0, 0x0), (-0.0, 0x8),
        (7.0, 0x7), (7.9, 0x7), (-7.5, 0xF),
        (0.5, 0x1), (0.25, 0x0), (-0.25, 0x8), (0.75, 0x2), (1.25, 0x2), (1.75, 0x4),
        (2.5, 0x4), (3.5, 0x6), (5.0, 0x6), (-5.0, 0xE), (1.5, 0x3), (3.0, 0x5), (4.0, 0x6), (0.2, 0x0),
    ]),
    "mxint8": (127 / 64, [
        (127 / 64, 0x7F), (-127 / 64, 0x81), (1.999, 0x7F), (-1.999, 0x81),  # symmetric: never 0x80
        (0.0, 0x00), (-0.0, 0x00),
        (1 / 64, 0x01), (1 / 128, 0x00), (-1 / 128, 0x00), (3 / 128, 0x02), (5 / 128, 0x02), (-3 / 128, 0xFE),
        (1.0, 0x40), (-1.0, 0xC0), (-1 / 64, 0xFF),
    ]),
    "mxint6": (31 / 16, [
        (31 / 16, 0x1F), (-31 / 16, 0x21), (1.99, 0x1F), (-1.99, 0x21), (0.0, 0x00), (-0.0, 0x00),
        (1 / 16, 0x01), (1 / 32, 0x00), (3 / 32, 0x02), (-1 / 16, 0x3F), (1.0, 0x10), (-1.0, 0x30),
    ]),
    "mxint4": (1.75, [
        (1.75, 0x7), (-1.75, 0x9), (1.9, 0x7), (-1.9, 0x9), (0.0, 0x0), (-0.0, 0x0),
        (0.25, 0x1), (0.125, 0x0), (0.375, 0x2), (0.625, 0x2), (-0.25, 0xF), (1.0, 0x4), (-1.0, 0xC),
    ]),
    "mxint2": (1.0, [
        (1.0, 0x1), (-1.0, 0x3), (0.5, 0x0), (-0.5, 0x0), (1.5, 0x1), (-1.5, 0x3), (1.99, 0x1),
        (0.0, 0x0), (-0.0, 0x0), (0.75, 0x1), (0.25, 0x0), (-0.75, 0x3),
    ]),
}


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_hand_computed_codes(backend, fmt, dtype):
    anchor, cases = HAND_CODES[fmt]
    assert cases[0][0] == anchor
    values = [anchor] + [v for v, _ in cases]
    expected = [cases[0][1]] + [c for _, c in cases]
    x = f32(values)
    exact = x.to(dtype).float() == x
    x = x.to(dtype)[None]
    if dtype != torch.float32:  # keep the values that the narrow dtype holds exactly
        keep = exact.nonzero().flatten()
        x = x[:, keep]
        expected = [expected[i] for i in keep.tolist()]
    t = q(x, fmt, 64, backend=backend)
    assert t.scales.tolist() == [[127]]
    got = codes_of(t)[0].tolist()
    bad = [(x[0, i].item(), hex(e), hex(g)) for i, (e, g) in enumerate(zip(expected, got)) if e != g]
    assert not bad, f"{fmt}: (value, expected, actual) {bad}"


# (fmt, scale_mode, amax, expected byte)
HAND_SCALES = [
    ("mxfp8_e4m3", "floor", 448.0, 127), ("mxfp8_e4m3", "floor", 1.0, 119), ("mxfp8_e4m3", "floor", 511.9, 127),
    ("mxfp8_e4m3", "floor", 512.0, 128), ("mxfp8_e4m3", "floor", 2.0**-118, 1), ("mxfp8_e4m3", "floor", 1e-38, 0),
    ("mxfp8_e4m3", "floor", 3.4028234663852886e38, 246), ("mxfp8_e4m3", "floor", 0.0, 0),
    ("mxfp8_e5m2", "floor", 57344.0, 127), ("mxfp8_e5m2", "floor", 1.0, 112), ("mxfp8_e5m2", "floor", 65536.0, 128),
    ("mxfp6_e3m2", "floor", 28.0, 127), ("mxfp6_e3m2", "floor", 31.99, 127), ("mxfp6_e3m2", "floor", 32.0, 128),
    ("mxfp6_e2m3", "floor", 7.5, 127), ("mxfp6_e2m3", "floor", 4.0, 127), ("mxfp6_e2m3", "floor", 3.99, 126),
    ("mxfp4_e2m1", "floor", 6.0, 127), ("mxfp4_e2m1", "floor", 8.0, 128), ("mxfp4_e2m1", "floor", 2.0**-124, 1),
    ("mxfp4_e2m1", "floor", 2.0**-125, 0), ("mxfp4_e2m1", "floor", 1e-45, 0),
    ("mxint8", "floor", 1.0, 127), ("mxint8", "floor", 1.99, 127), ("mxint8", "floor", 2.0, 128),
    ("mxint8", "floor", 0.5, 126), ("mxint8", "floor", 2.0**127, 254), ("mxint8", "floor", 3.4028234663852886e38, 254),
    ("mxint2", "floor", 3.0, 128), ("mxint4", "floor", 2.0**-126, 1), ("mxint6", "floor", 2.0**-127, 0),
    ("mxfp8_e4m3", "rceil", 448.0, 127), ("mxfp8_e4m3", "rceil", 449.0, 128), ("mxfp8_e4m3", "rceil", 224.0, 126),
    ("mxfp8_e4m3", "rceil", 224.5, 127), ("mxfp8_e4m3", "rceil", 1.0, 119), ("mxfp8_e4m3", "rceil", 0.0, 0),
    ("mxfp8_e5m2", "rceil", 57344.0, 127), ("mxfp8_e5m2", "rceil", 1.0, 112),
    ("mxfp6_e3m2", "rceil", 28.0, 127), ("mxfp6_e3m2", "rceil", 14.5, 127), ("mxfp6_e3m2", "rceil", 14.0, 126),
    ("mxfp6_e2m3", "rceil", 7.5, 127), ("mxfp6_e2m3", "rceil", 7.6, 128),
    ("mxfp4_e2m1", "rceil", 6.0, 127), ("mxfp4_e2m1", "rceil", 6.0000005, 128), ("mxfp4_e2m1", "rceil", 3.0, 126),
    ("mxfp4_e2m1", "rceil", 3.0000002, 127), ("mxfp4_e2m1", "rceil", 3.4028234663852886e38, 253),
    ("mxfp4_e2m1", "rceil", 1e-40, 0),
    ("mxint8", "rceil", 127 / 64, 127), ("mxint8", "rceil", 2.0, 128), ("mxint8", "rceil", 1.0, 127),
    ("mxint2", "rceil", 1.0, 127), ("mxint2", "rceil", 1.5, 128), ("mxint2", "rceil", 0.5, 126),
]


@pytest.mark.parametrize("backend", cpu_backends())
def test_hand_computed_scale_bytes(backend):
    for mode in ("floor", "rceil"):
        cases = [c for c in HAND_SCALES if c[1] == mode]
        for fmt in {c[0] for c in cases}:
            sub = [c for c in cases if c[0] == fmt]
            x = torch.zeros(len(sub), 16)
            for i, (_, _, amax, _) in enumerate(sub):
                x[i, 3] = -amax if i % 2 else amax
                x[i, 9] = amax / 3
            t = q(x, fmt, 16, backend=backend, scale_mode=mode)
            got = t.scales.flatten().tolist()
            want = [c[3] for c in sub]
            assert got == want, f"{fmt} {mode}: amax {[c[2] for c in sub]} -> {got}, expected {want}"


# Per format, a block [1.0, NaN, -2.0, Inf, -Inf, -0.0, 0.5]: the scale is 0xFF; finite elements
# are stored as (signed, FP) zero, NaN/Inf as the NaN code (fp8) or the max code, with the sign.
NAN_BLOCK_CODES = {
    "mxfp8_e4m3": [0x00, 0x7F, 0x80, 0x7F, 0xFF, 0x80, 0x00],
    "mxfp8_e5m2": [0x00, 0x7F, 0x80, 0x7F, 0xFF, 0x80, 0x00],
    "mxfp6_e3m2": [0x00, 0x1F, 0x20, 0x1F, 0x3F, 0x20, 0x00],
    "mxfp6_e2m3": [0x00, 0x1F, 0x20, 0x1F, 0x3F, 0x20, 0x00],
    "mxfp4_e2m1": [0x0, 0x7, 0x8, 0x7, 0xF, 0x8, 0x0],
    "mxint8": [0x00, 0x7F, 0x00, 0x7F, 0x81, 0x00, 0x00],
    "mxint6": [0x00, 0x1F, 0x00, 0x1F, 0x21, 0x00, 0x00],
    "mxint4": [0x0, 0x7, 0x0, 0x7, 0x9, 0x0, 0x0],
    "mxint2": [0x0, 0x1, 0x0, 0x1, 0x3, 0x0, 0x0],
}


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_hand_computed_nan_inf_block(backend, fmt):
    x = f32([[1.0, NAN, -2.0, INF, -INF, -0.0, 0.5]])
    for mode in ("floor", "rceil"):
        t = q(x, fmt, 16, backend=backend, scale_mode=mode)
        assert t.scales.tolist() == [[255]]
        assert codes_of(t)[0].tolist() == NAN_BLOCK_CODES[fmt]
        assert torch.isnan(dq(t, backend=backend)).all()
    # only the Inf block is NaN, the all-zero block after it has scale byte 0
    x2 = torch.zeros(2, 32)
    x2[0, 0] = INF
    t = q(x2.view(1, 64), fmt, 32, backend=backend)
    assert t.scales.tolist() == [[255, 0]]
    out = dq(t, backend=backend)[0]
    assert torch.isnan(out[:32]).all() and torch.equal(out[32:], torch.zeros(32))


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_hand_computed_zero_blocks(backend, fmt):
    f = FORMATS[fmt]
    x = torch.zeros(2, 40)
    x[1] = -0.0
    for mode in ("floor", "rceil"):
        t = q(x, fmt, 16, backend=backend, scale_mode=mode)
        assert t.scales.tolist() == [[0, 0, 0]] * 2
        codes = codes_of(t)
        assert codes[0].tolist() == [0] * 40
        assert codes[1].tolist() == [0 if f.is_int else 1 << (f.bits - 1)] * 40  # -0 kept for FP
        out = dq(t, backend=backend)
        assert_bits_equal(out, x if not f.is_int else torch.zeros(2, 40), "dequantize of zeros")


# (fmt, code, value at scale byte 127) for dequantize: specials, subnormals, -2**(b-1) of MXINT
HAND_DECODE = {
    "mxfp8_e4m3": [(0x00, 0.0), (0x80, -0.0), (0x01, 2.0**-9), (0x08, 2.0**-6), (0x38, 1.0), (0x7E, 448.0),
                   (0xFE, -448.0), (0x7F, NAN), (0xFF, NAN)],
    "mxfp8_e5m2": [(0x01, 2.0**-16), (0x04, 2.0**-14), (0x3C, 1.0), (0x7B, 57344.0), (0x7C, INF), (0xFC, -INF),
                   (0x7D, NAN), (0x7F, NAN), (0x80, -0.0)],
    "mxfp6_e3m2": [(0x01, 0.0625), (0x04, 0.25), (0x0C, 1.0), (0x1F, 28.0), (0x3F, -28.0), (0x20, -0.0)],
    "mxfp6_e2m3": [(0x01, 0.125), (0x07, 0.875), (0x08, 1.0), (0x1F, 7.5), (0x21, -0.125), (0x20, -0.0)],
    "mxfp4_e2m1": list(zip(range(16), [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                                       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])),
    "mxint8": [(0x80, -2.0), (0x81, -127 / 64), (0x7F, 127 / 64), (0xFF, -1 / 64), (0x01, 1 / 64), (0x40, 1.0)],
    "mxint6": [(0x20, -2.0), (0x21, -31 / 16), (0x1F, 31 / 16), (0x3F, -1 / 16), (0x10, 1.0)],
    "mxint4": [(0x8, -2.0), (0x9, -1.75), (0x7, 1.75), (0xF, -0.25), (0x4, 1.0)],
    "mxint2": [(0x0, 0.0), (0x1, 1.0), (0x2, -2.0), (0x3, -1.0)],
}


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_hand_computed_dequantize(backend, fmt):
    codes, values = zip(*HAND_DECODE[fmt])
    for byte, factor in ((127, 1.0), (128, 2.0), (120, 2.0**-7), (0, 2.0**-127), (254, 2.0**127)):
        t = make_mx([list(codes)], [[byte]], fmt, 32)
        # exact in float64; products beyond fp32 overflow to Inf (byte 254), as they must
        want = (torch.tensor([list(values)], dtype=torch.float64) * factor).float()
        assert_bits_equal(dq(t, backend=backend), want, f"{fmt} byte {byte}")
    t = make_mx([list(codes)], [[255]], fmt, 32)
    assert torch.isnan(dq(t, backend=backend)).all()


EMPTY_SHAPES = ((0, 32), (4, 0), (0, 0), (3, 0, 5))

def _no_rows(fmt, shape) -> bool:
    """The failing combinations: a sub-byte format and no rows in the canonical (rows, L) layout."""
    return FORMATS[fmt].bits != 8 and 0 in shape[:-1]


def check_empty_quantize(backend, fmt, shape):
    f = FORMATS[fmt]
    x = torch.zeros(shape)
    t = q(x, fmt, 32, backend=backend)
    length = shape[-1]
    assert list(t.data.shape) == [*shape[:-1], f.packed_bytes(length)] and t.data.dtype == torch.uint8
    assert list(t.scales.shape) == [*shape[:-1], -(-length // 32)] and t.scales.dtype == torch.uint8
    for dtype in (torch.float32, torch.bfloat16):
        out = dq(t, dtype, backend)
        assert out.shape == x.shape and out.dtype == dtype
    with slimops.use_backend(backend):
        fq = slimops.mx.fake_quantize(x, fmt, 32)
    assert fq.shape == x.shape and fq.dtype == x.dtype


def check_empty_dequantize(backend, fmt, shape):
    """dequantize alone, from empty data and scales of the right shapes."""
    f = FORMATS[fmt]
    length = shape[-1]
    data = torch.empty(*shape[:-1], f.packed_bytes(length), dtype=torch.uint8)
    scales = torch.empty(*shape[:-1], -(-length // 32), dtype=torch.uint8)
    with slimops.use_backend(backend):
        out = torch.ops.slimops.mx_dequantize(data, scales, fmt, 32, -1, length, torch.float16)
    assert out.shape == shape and out.dtype == torch.float16


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_empty_tensors(backend, fmt):
    for shape in EMPTY_SHAPES:
        if not _no_rows(fmt, shape):
            check_empty_quantize(backend, fmt, shape)
            check_empty_dequantize(backend, fmt, shape)


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("check", [check_empty_quantize, check_empty_dequantize], ids=["quantize", "dequantize"])
def test_empty_tensors_no_rows_sub_byte(backend, check):
    """Sub-byte formats with no rows: quantize(torch.zeros(0, 32), 'mxfp4') and dequantize of (0, 16) data."""
    for fmt in ALL_FORMATS:
        for shape in EMPTY_SHAPES:
            if _no_rows(fmt, shape):
                check(backend, fmt, shape)


@pytest.mark.parametrize("backend", cpu_backends())
def test_partial_last_block(backend):
    # 40 elements, block 32: a full block of 1.0 and a last block of 8 x 3.0
    x = torch.cat([torch.ones(32), torch.full((8,), 3.0)])[None]
    t = q(x, "mxfp8_e4m3", 32, backend=backend)
    assert t.scales.tolist() == [[119, 120]]  # floor(log2 1) - 8, floor(log2 3) - 8
    assert codes_of(t)[0].tolist() == [0x78] * 32 + [0x7C] * 8  # 256 = 2**8; 384 = 1.5 * 2**8
    assert_bits_equal(dq(t, backend=backend), x, "dequantize")
    # the zero padding of a partial block never raises its amax: the block [tiny] alone
    x = torch.cat([torch.full((64,), 100.0), f32([2.0**-20, -(2.0**-21)])])[None]
    t = q(x, "mxfp4_e2m1", 32, backend=backend)
    assert t.scales.tolist() == [[131, 131, 105]] and t.data.shape == (1, 33)
    assert codes_of(t)[0, 64:].tolist() == [0x6, 0xC]  # byte 105: v = 4.0 (code 6) and -2.0 (code 0xC)
    assert_bits_equal(dq(t, backend=backend)[:, 64:], x[:, 64:], "partial block")


@pytest.mark.parametrize("backend", cpu_backends())
def test_packed_byte_layout(backend):
    # 4-bit: element 0 in the low nibble (torch.float4_e2m1fn_x2). codes 7, 1, 2, 0xA, 0x5 (odd length)
    t = q(f32([[6.0, 0.5, 1.0, -1.0, 3.0]]), "mxfp4_e2m1", 32, backend=backend)
    assert t.data.tolist() == [[0x17, 0xA2, 0x05]]
    # 6-bit: four codes in three bytes, little-endian: 0x1F | 0x08 << 6 | 0x21 << 12 | 0x04 << 18 = 0x12121F
    t = q(f32([[7.5, 1.0, -0.125, 0.5, 7.5, 0.0]]), "mxfp6_e2m3", 32, backend=backend)
    assert t.data.tolist() == [[0x1F, 0x12, 0x12, 0x1F, 0x00]]  # 6 codes -> 36 bits -> 5 bytes
    t = q(f32([[28.0, -28.0, 0.0625, -0.0]]), "mxfp6_e3m2", 32, backend=backend)
    # 0x1F | 0x3F << 6 | 0x01 << 12 | 0x20 << 18 = 0x801FDF
    assert t.data.tolist() == [[0xDF, 0x1F, 0x80]]
    t = q(f32([[31 / 16, -1.0, 1 / 16, -31 / 16]]), "mxint6", 32, backend=backend)
    # 0x1F | 0x30 << 6 | 0x01 << 12 | 0x21 << 18 = 0x841C1F
    assert t.data.tolist() == [[0x1F, 0x1C, 0x84]]
    # 2-bit: four per byte, element 0 in bits 0-1: 1 | 3 << 2 | 0 << 4 | 1 << 6 = 0x4D; then 3, 1 -> 0x07
    t = q(f32([[1.0, -1.0, 0.0, 1.0, -1.0, 1.0]]), "mxint2", 32, backend=backend)
    assert t.data.tolist() == [[0x4D, 0x07]]
    # 4-bit MXINT: 7, 9 (-1.75), 4, 0xC (-1.0)
    t = q(f32([[1.75, -1.75, 1.0, -1.0]]), "mxint4", 32, backend=backend)
    assert t.data.tolist() == [[0x97, 0xC4]]
    # 8-bit: one per byte
    t = q(f32([[448.0, -1.0, 2.0**-9]]), "mxfp8_e4m3", 32, backend=backend)
    assert t.data.tolist() == [[0x7E, 0xB8, 0x01]]


def test_pack_unpack_roundtrip():
    g = torch.Generator().manual_seed(3)
    for bits in (2, 4, 6, 8):
        for length in (1, 2, 3, 4, 5, 7, 33, 64):
            codes = torch.randint(0, 1 << bits, (3, length), generator=g)
            packed = ref.pack(codes, bits)
            assert packed.shape == (3, (length * bits + 7) // 8)
            assert torch.equal(ref.unpack(packed, bits, length), codes)
            # the little-endian bit stream, bit by bit
            stream = [(int(c) >> k) & 1 for c in codes[0] for k in range(bits)]
            stream += [0] * (-len(stream) % 8)
            want = [sum(stream[8 * i + k] << k for k in range(8)) for i in range(len(stream) // 8)]
            assert packed[0].tolist() == want


# ============================================================================ (e) swizzle


@needs_torchao
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (127, 3), (128, 4), (129, 5), (257, 9), (2, 130, 6), (300, 17)],
                         ids=str)
def test_swizzle_matches_to_blocked(shape):
    s = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(sum(shape)))
    got = slimops.mx.swizzle_scales(s)
    want = to_blocked(s.reshape(-1, shape[-1])).flatten()
    assert_bits_equal(got, want, f"swizzle {shape}")
    assert got.numel() == -(-math.prod(shape[:-1]) // 128) * 128 * -(-shape[-1] // 4) * 4
    assert_bits_equal(slimops.mx.swizzle_scales(s.view(torch.float8_e8m0fnu)), want, "e8m0 input")


def test_swizzle_layout_by_hand():
    # one 128x4 tile: byte at (r, c) lands at (r % 32) * 16 + (r // 32) * 4 + c
    r, c = torch.meshgrid(torch.arange(128), torch.arange(4), indexing="ij")
    s = (r * 4 + c).to(torch.int64)
    out = slimops.mx.swizzle_scales((s % 256).to(torch.uint8)).to(torch.int64)
    pos = (r % 32) * 16 + (r // 32) * 4 + c
    assert torch.equal(out[pos.flatten()], (s % 256).flatten())
    t = slimops.mx.quantize(torch.randn(5, 96), "mxfp8")
    assert torch.equal(t.swizzled_scales(), slimops.mx.swizzle_scales(t.scales))
