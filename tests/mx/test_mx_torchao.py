"""The MX reference against torchao's pure-PyTorch ``to_mx``, and the documented departures from it.

(a) bit-exact against torchao (FLOOR, and RCEIL on finite data), on many distributions;
(b) the two documented departures from torchao (±Inf blocks, fp32-subnormal amax),
    which also run on every CPU backend.
"""

from __future__ import annotations

import math

import pytest
import torch

import slimops
from slimops.mx import reference as ref
from slimops.mx.formats import FORMATS
from slimops.testing import assert_bits_equal, cpu_backends

from .mx_helpers import (ALL_FORMATS, FP_FORMATS, INF, NAN, TORCHAO_ELEM, ScaleCalculationMode, codes_of, dq,
                         f32, needs_torchao, q, to_mx)

# ============================================================================ (a) torchao


def _blockwise(x2d: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """Apply a per-block pattern: zero / -0 blocks, saturating blocks, NaN blocks."""
    rows, length = x2d.shape
    x = x2d.clone()
    if kind == "zeros":
        x[0, :] = 0.0
        x[1, : length // 2] = -0.0
        x[2, 32:64] = 0.0
    elif kind == "nan":
        for r in range(rows):
            j = int(torch.randint(0, length, (1,), generator=g))
            if r % 3 != 2:
                x[r, j] = NAN
    return x


def torchao_input(dist: str, shape, dtype, seed: int) -> torch.Tensor:
    """Random data of several distributions and scales; every block's amax >= 2**-100.

    Blocks whose scale byte would be 0 with non-zero data are the documented
    departure (b) and are kept out of here.
    """
    g = torch.Generator().manual_seed(seed)
    rows, length = shape
    row_scale = torch.exp2(torch.randint(-90, 100, (rows, 1), generator=g).float())
    if dist == "normal":
        x = torch.randn(shape, generator=g) * row_scale
    elif dist == "uniform":
        x = (torch.rand(shape, generator=g) * 2 - 1) * row_scale
    elif dist == "loguniform_wide":  # one tensor over ~250 binades: subnormal v, underflow to 0 in-block
        e = torch.rand(shape, generator=g) * 250 - 125
        x = torch.exp2(e) * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
    elif dist == "loguniform_rows":
        e = torch.rand(shape, generator=g) * 24 - 24
        x = torch.exp2(e) * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0) * row_scale
    elif dist == "heavy_tail":  # Cauchy-like ratio and a log-normal scale mixture
        x = torch.randn(shape, generator=g) / torch.randn(shape, generator=g)
        x = x * torch.exp(torch.randn(shape, generator=g) * 3)
    elif dist == "near_top":  # amax mantissa close to 2: the top binade saturates (FLOOR)
        x = (torch.rand(shape, generator=g) * 2 - 1) * row_scale
        top = 2.0 - torch.rand(rows, length // 32, generator=g) * 0.2
        x.view(rows, -1, 32)[:, :, 7] = top * row_scale
    elif dist in ("zeros", "nan"):
        x = _blockwise(torch.randn(shape, generator=g) * row_scale, dist, g)
    else:
        raise AssertionError(dist)
    return x.to(dtype)


def compare_with_torchao(x: torch.Tensor, fmt: str, block_size: int, mode: str) -> int:
    """Scales and element codes of the reference vs torchao; returns the number of blocks compared.

    Element codes of NaN-scale blocks are not compared (torchao's depend on the
    platform's default NaN). For RCEIL, a scale that differs is accepted only when
    the reference holds the exact ceil(log2(amax / max)) and torchao is one below it
    (``torch.log2`` rounding a value just above a power of two down to it).
    """
    f = FORMATS[fmt]
    rows, length = x.shape
    nblocks = length // block_size
    s_ao, d_ao = to_mx(x.contiguous(), TORCHAO_ELEM[fmt], block_size, ScaleCalculationMode(mode))
    s_ao = s_ao.view(torch.uint8).reshape(rows, nblocks).to(torch.int64)
    d_ao = d_ao.view(torch.uint8).reshape(rows, -1)
    c_ao = ref.unpack(d_ao, 4, length) if f.bits == 4 else d_ao.to(torch.int64)

    t = q(x, fmt, block_size, scale_mode=mode)
    s_ours = t.scales.to(torch.int64)
    c_ours = codes_of(t)

    same_scale = s_ours == s_ao
    if mode == "rceil" and not bool(same_scale.all()):
        amax = x.float().abs().view(rows, nblocks, block_size).amax(-1)
        for r, b in (~same_scale).nonzero().tolist():
            descale = (f32(amax[r, b].item()) / f.max_value).item()  # fp32 division, as both sides do
            mant, exp = math.frexp(descale)
            exact = exp - 1 if mant == 0.5 else exp
            assert s_ours[r, b] == exact + 127, f"block {(r, b)}: reference scale is not ceil(log2({descale!r}))"
            assert s_ao[r, b] == exact + 126 and 0 < descale / 2.0 ** (exact - 1) - 1 < 2**-16, (
                f"block {(r, b)}: torchao {int(s_ao[r, b])} vs reference {int(s_ours[r, b])}, "
                f"not torchao's log2 rounding")
    else:
        assert_bits_equal(s_ours, s_ao, f"{fmt} {mode} scales")
    keep = (same_scale & (s_ours != 255)).repeat_interleave(block_size, dim=1)
    bad = (keep & (c_ours != c_ao)).nonzero()
    assert len(bad) == 0, (f"{fmt} {mode}: {len(bad)} element codes differ, first at {bad[:4].tolist()}: "
                           f"x={[x[i, j].item() for i, j in bad[:4].tolist()]} "
                           f"ours={[c_ours[i, j].item() for i, j in bad[:4].tolist()]} "
                           f"torchao={[c_ao[i, j].item() for i, j in bad[:4].tolist()]}")
    return int(same_scale.sum())


DISTS = ["normal", "uniform", "loguniform_wide", "loguniform_rows", "heavy_tail", "near_top", "zeros", "nan"]


@needs_torchao
@pytest.mark.parametrize("fmt", list(TORCHAO_ELEM) or FP_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("dist", DISTS)
def test_floor_matches_torchao(fmt, dtype, dist):
    for block_size, seed in ((32, 0), (16, 1), (64, 2)):
        x = torchao_input(dist, (12, 256), dtype, seed + 10 * DISTS.index(dist))
        compare_with_torchao(x, fmt, block_size, "floor")


@needs_torchao
@pytest.mark.parametrize("fmt", list(TORCHAO_ELEM) or FP_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_floor_matches_torchao_every_binade(fmt, dtype):
    """One block per fp32 binade whose scale byte is >= 1, mantissas random, plus saturation."""
    f = FORMATS[fmt]
    g = torch.Generator().manual_seed(7)
    exps = torch.arange(f.emax - 125, 128)
    x = (torch.rand(len(exps), 32, generator=g) * 2 - 1) * torch.exp2(exps.float())[:, None]
    top = 2 - torch.randint(1, 9, (len(exps),), generator=g).float() * 2**-7  # exact in bf16 too
    x[:, 0] = torch.exp2(exps.float()) * top  # top of the binade: saturates
    x[:, 1] = -torch.exp2(exps.float()) * (f.max_value / 2.0**f.emax)  # exactly the format max, negative
    compare_with_torchao(x.to(dtype), fmt, 32, "floor")


@needs_torchao
@pytest.mark.parametrize("fmt", list(TORCHAO_ELEM) or FP_FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("dist", [d for d in DISTS if d != "nan"])
def test_rceil_matches_torchao(fmt, dtype, dist):
    x = torchao_input(dist, (12, 256), dtype, 100 + DISTS.index(dist))
    compare_with_torchao(x, fmt, 32, "rceil")


@needs_torchao
@pytest.mark.parametrize("fmt", list(TORCHAO_ELEM) or FP_FORMATS)
def test_rceil_near_powers_of_two_vs_torchao(fmt):
    """amax / max_elem a few ulps above 2**k: the exact rule gives k+1; torchao's float log2 may give k.

    Every mismatch must be that one (checked in compare_with_torchao); all other blocks equal.
    """
    f = FORMATS[fmt]
    ks = torch.arange(-100, 100, 7).float()
    rows = []
    for j in range(0, 4):
        amax = f32(f.max_value) * torch.exp2(ks) * (1 + j * 2.0**-23)
        block = torch.rand(len(ks), 32, generator=torch.Generator().manual_seed(j)) * amax[:, None]
        block[:, 3] = -amax
        rows.append(block)
    x = torch.cat(rows).contiguous()
    compared = compare_with_torchao(x, fmt, 32, "rceil")
    assert compared > len(ks)  # at least the exact powers of two match


def test_rceil_exact_just_above_power_of_two():
    """Hand case of the rule above: amax = 448 * (1 + 2**-23) in mxfp8_e4m3.

    ceil(log2(amax / 448)) = 1 (the quotient is 1 + 2**-23 > 1), so the byte is 128 and
    the amax element is 224.0000... -> code 0x76 (224), not saturated. (torchao 0.18's
    eager RCEIL computes ceil(float32 log2(...)) = 0 here and saturates the element.)
    """
    x = torch.zeros(1, 32)
    x[0, 0] = 448.0 * (1 + 2**-23)
    t = q(x, "mxfp8_e4m3", scale_mode="rceil")
    assert t.scales.tolist() == [[128]]
    assert codes_of(t)[0, 0].item() == 0x76


# ============================================================================ (b) departures


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_departure_inf_block_is_nan(backend, fmt):
    """A block holding ±Inf gets scale 0xFF and dequantizes to NaN (torchao keeps a finite scale)."""
    x = torch.ones(3, 64)
    x[0, 40] = INF
    x[1, 5] = -INF
    x[2, 0], x[2, 63] = NAN, INF
    t = q(x, fmt, 32, backend=backend)
    one = 127 - FORMATS[fmt].emax  # the scale byte of a block of ones
    assert t.scales.tolist() == [[one, 255], [255, one], [255, 255]]
    out = dq(t, backend=backend)
    nan_blocks = (t.scales == 255).repeat_interleave(32, dim=1)
    assert torch.isnan(out[nan_blocks]).all()
    assert torch.equal(out[~nan_blocks], torch.ones(int((~nan_blocks).sum())))
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(torch.isnan(dq(t, dtype, backend)), nan_blocks)
    with slimops.use_backend(backend):
        fq = slimops.mx.fake_quantize(x, fmt)
    assert torch.equal(torch.isnan(fq), nan_blocks)


# Per format: element values v on the grid, so x = v * 2**-127 are exactly representable after
# scale byte 0 (2**-127); the largest is an fp32 subnormal.
SUBNORMAL_BLOCK_V = {
    "mxfp8_e4m3": [1.0, -0.5, 2.0**-9, 1.75, 0.0],
    "mxfp8_e5m2": [1.0, -0.5, 2.0**-16, 1.5, -0.0],
    "mxfp6_e3m2": [1.0, -0.5, 2.0**-4, 1.75, 0.0],
    "mxfp6_e2m3": [1.0, -0.5, 0.125, 0.875, 0.0],
    "mxfp4_e2m1": [1.0, -0.5, 0.5, 1.5, 0.0],
    "mxint8": [1.0, -0.5, 2.0**-6, 63 / 64, 0.0],
    "mxint6": [1.0, -0.5, 2.0**-4, 15 / 16, 0.0],
    "mxint4": [1.0, -0.5, 0.25, 0.75, 0.0],
    "mxint2": [1.0, -1.0, 0.0, 1.0, 0.0],
}


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_departure_subnormal_amax_is_exact(backend, fmt):
    """amax an fp32 subnormal: byte 0 means 2**-127 and the on-grid values come back exactly.

    torchao divides by 2**-126 instead, which halves every element (and loses the smallest).
    """
    v = f32(SUBNORMAL_BLOCK_V[fmt])
    x = (v * 2.0**-127).view(1, -1)
    assert x.abs().max() < torch.finfo(torch.float32).tiny  # the amax is subnormal
    t = q(x, fmt, 32, backend=backend)
    assert t.scales.tolist() == [[0]]
    out = dq(t, backend=backend)
    assert_bits_equal(out, x + 0.0 if FORMATS[fmt].is_int else x, "dequantize")  # MXINT has no -0
    if fmt in TORCHAO_ELEM:
        s_ao, d_ao = to_mx(torch.nn.functional.pad(x, (0, 32 - x.shape[1])), TORCHAO_ELEM[fmt], 32)
        assert s_ao.view(torch.uint8).item() == 0
        d_ao = d_ao.view(torch.uint8).reshape(1, -1)
        c_ao = ref.unpack(d_ao, 4, 32) if FORMATS[fmt].bits == 4 else d_ao.to(torch.int64)
        theirs = ref.decode(c_ao, torch.zeros(1, 1, dtype=torch.int64), FORMATS[fmt], 32)[:, : x.shape[1]]
        assert not torch.equal(theirs, x), "torchao now matches the exact rule: update the documented departure"


@pytest.mark.parametrize("backend", cpu_backends())
def test_departure_tiny_normal_amax_byte0(backend):
    """Same rule for a normal amax that clamps to byte 0: e4m3 amax 2**-120 -> 2**-128 = 2**-1 * 2**-127."""
    x = f32([[2.0**-120, -(2.0**-121), 2.0**-127, 2.0**-136]])
    t = q(x, "mxfp8_e4m3", 32, backend=backend)
    assert t.scales.tolist() == [[0]]
    # v = x * 2**127 = 128, -64, 1, 2**-9 -> codes of e4m3
    assert codes_of(t).tolist() == [[0x70, 0xE8, 0x38, 0x01]]
    assert_bits_equal(dq(t, backend=backend), x, "dequantize")
