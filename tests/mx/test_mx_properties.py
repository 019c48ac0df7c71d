"""MX properties with hypothesis: error bound, idempotence, stochastic rounding, axes.

(d) of the reference tests (``test_mx_reference.py`` has the rest); run on the reference
and every CPU backend.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import slimops
from slimops.mx import reference as ref
from slimops.mx.formats import BLOCK_SIZES, FORMATS, get_format

from slimops.testing import assert_bits_equal
from .mx_helpers import ALL_FORMATS, codes_of, dq, f32, q


def element_bound(x: torch.Tensor, t, stochastic: bool):
    """Check dequantize(t) against x element by element (float64 arithmetic, last axis)."""
    f = get_format(t.fmt)
    x64 = x.double()
    assert (t.scales != 255).all()
    s = (t.scales.to(torch.int64) - 127).repeat_interleave(t.block_size, dim=-1)[..., : x.shape[-1]]
    # the exact MX value: element (fp32-exact at scale byte 127) times 2**s, in float64
    elems = ref.decode(codes_of(t), torch.full_like(t.scales, 127, dtype=torch.int64), f, t.block_size)
    out = elems.double() * torch.exp2(s.double())
    # dequantize to fp32 is that value, correctly rounded. RCEIL in the top fp32 binade may give an
    # MX value beyond fp32 (mxfp8_e4m3: 256 * 2**120 = 2**128): ±Inf then. FLOOR never does.
    assert_bits_equal(dq(t), out.float(), "dequantize vs the exact MX value")
    overflow = out.abs() > torch.finfo(torch.float32).max
    assert bool((x64.abs()[overflow] * 2 > torch.finfo(torch.float32).max).all())
    v = x64 * torch.exp2(-s.double())
    mantissa, exponent = torch.frexp(v)
    te = torch.clamp(exponent - 1, min=1 - f.bias) if not f.is_int else torch.zeros_like(exponent)
    quantum = torch.exp2((te - f.mbits).double()) * torch.exp2(s.double())
    err = (out - x64).abs()
    sat = v.abs() >= f.max_value
    max_out = torch.copysign(f.max_value * torch.exp2(s.double()), x64)
    assert torch.equal(out[sat], max_out[sat]), "saturation: |v| >= max must give ±max * 2**s"
    limit = quantum if stochastic else quantum / 2  # (stochastic: < 1 quantum; float64 may round to it)
    ok = sat | (err <= limit)
    if not bool(ok.all()):
        i = (~ok).nonzero()[0].tolist()
        raise AssertionError(f"{t.fmt}: x={x64[tuple(i)].item()!r} -> {out[tuple(i)].item()!r}, "
                             f"error {err[tuple(i)].item()} > bound {limit[tuple(i)].item()}")
    # the sign never flips; FP formats keep the sign of zero
    assert bool(((out * x64) >= 0).all())
    if not f.is_int:
        assert torch.equal(torch.signbit(out), torch.signbit(x64))


float32s = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def mx_case(draw):
    fmt = draw(st.sampled_from(ALL_FORMATS))
    block_size = draw(st.sampled_from(BLOCK_SIZES))
    rows = draw(st.integers(1, 3))
    length = draw(st.integers(1, 130))
    if draw(st.booleans()):
        vals = draw(st.lists(float32s, min_size=rows * length, max_size=rows * length))
        x = f32(vals).view(rows, length)
    else:  # dense random data, a per-tensor binade and a spread, seeded from hypothesis
        seed, e0, spread = draw(st.integers(0, 2**31)), draw(st.integers(-140, 120)), draw(st.integers(0, 40))
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(rows, length, generator=g) * torch.exp2(
            (e0 + torch.rand(rows, length, generator=g) * spread).clamp(max=124.0))
    dtype = draw(st.sampled_from([torch.float32, torch.bfloat16, torch.float16]))
    big = torch.finfo(dtype).max
    return fmt, block_size, x.clamp(-big, big).to(dtype)


PROP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROP
@given(mx_case(), st.sampled_from(["floor", "rceil"]))
def test_prop_error_bound(case, mode):
    fmt, block_size, x = case
    t = q(x, fmt, block_size, scale_mode=mode)
    element_bound(x.float(), t, stochastic=False)


@PROP
@given(mx_case(), st.integers(0, 2**32 - 1))
def test_prop_stochastic_bound_and_reproducible(case, seed):
    fmt, block_size, x = case
    t = q(x, fmt, block_size, stochastic=True, seed=seed)
    element_bound(x.float(), t, stochastic=True)
    t2 = q(x, fmt, block_size, stochastic=True, seed=seed)
    assert torch.equal(t.data, t2.data) and torch.equal(t.scales, t2.scales)
    t3 = q(x, fmt, block_size, stochastic=True, seed=seed, backend="native") if \
        slimops._backend.native_module("_C") is not None else t2
    assert torch.equal(t.data, t3.data)


@PROP
@given(mx_case(), st.sampled_from(["floor", "rceil"]))
def test_prop_idempotent(case, mode):
    fmt, block_size, x = case
    t1 = q(x, fmt, block_size, scale_mode=mode)
    y = dq(t1)  # exact in fp32 (but see element_bound: RCEIL may overflow it to Inf)
    assume(mode == "floor" or bool(torch.isfinite(y).all()))
    t2 = q(y, fmt, block_size, scale_mode=mode)
    if mode == "floor":  # bit for bit
        assert_bits_equal(t2.scales, t1.scales, "scales")
        assert_bits_equal(t2.data, t1.data, "data")
    else:
        # RCEIL may lower a scale by one when the amax element rounds down to max/2 (e.g. fp4:
        # 3.1 -> 3.0 = 6/2); the values are then the same, on a finer scale.
        assert_bits_equal(dq(t2), y, "values")
    # fake_quantize is quantize-dequantize in the input dtype
    with slimops.use_backend("reference"):
        fq = slimops.mx.fake_quantize(x, fmt, block_size, scale_mode=mode)
    assert_bits_equal(fq, dq(t1, x.dtype), "fake_quantize")


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ALL_FORMATS), st.sampled_from(BLOCK_SIZES), st.integers(0, 3),
       st.lists(st.integers(1, 40), min_size=3, max_size=3), st.integers(0, 2**20), st.booleans())
def test_prop_axes(fmt, block_size, axis, shape, seed, stochastic):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 10
    ax = axis - 1 if axis == 3 else axis  # 0, 1, 2 or -1
    t = q(x, fmt, block_size, ax, stochastic=stochastic, seed=seed)
    moved = x.movedim(ax, -1).contiguous()
    t_last = q(moved, fmt, block_size, -1, stochastic=stochastic, seed=seed)
    assert t.axis == ax % 3 and t.shape == x.shape
    assert torch.equal(t.data, t_last.data.movedim(-1, ax))
    assert torch.equal(t.scales, t_last.scales.movedim(-1, ax))
    assert_bits_equal(dq(t), dq(t_last).movedim(-1, ax), "dequantize along the axis")


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "mxint4", "mxint2"])
@pytest.mark.parametrize("seed", [0, 12345])
def test_stochastic_unbiased(fmt, seed):
    """Mean of stochastic rounding over 4096 independent draws is x (to 6 standard errors); RNE is biased."""
    f = FORMATS[fmt]
    g = torch.Generator().manual_seed(seed)
    row = (torch.rand(32, generator=g) * 2 - 1) * f.max_value * 0.999
    row[0] = 2.0**f.emax  # fixes shared_exp = 0 (floor), so v = x
    row[1] = 0.3 * 2.0**(1 - f.bias - f.mbits) if not f.is_int else 0.3 * 2.0**-f.mbits  # below min subnormal
    n = 4096
    x = row.repeat(n, 1)  # every row draws its own random bits
    t = q(x, fmt, 32, stochastic=True, seed=seed)
    assert (t.scales == 127).all()
    out = dq(t).double()
    _, e = torch.frexp(row.double())
    te = torch.clamp(e - 1, min=1 - f.bias) if not f.is_int else torch.zeros_like(e)
    quantum = torch.exp2((te - f.mbits).double())
    mean_err = (out.mean(0) - row.double()) / quantum
    assert mean_err.abs().max() < 6 * 0.5 / math.sqrt(n), f"bias of stochastic rounding: {mean_err.tolist()}"
    assert abs(mean_err.mean()) < 6 * 0.5 / math.sqrt(n * 32)
    # the same x rounds to nearest-even with a bias that does not average out (element 1: 0.3 quantum -> 0)
    rne = dq(q(x[:1], fmt, 32)).double()
    assert rne[0, 1] == 0 and abs(mean_err[1]) < 0.05
    # every draw is one of the two neighbours
    lo = torch.floor(row.double() / quantum) * quantum
    assert bool(((out == lo) | (out == lo + quantum)).all())
    # another seed gives other bits
    assert not torch.equal(q(x[:64], fmt, 32, stochastic=True, seed=seed + 1).data, t.data[:64])


def _tiny_sr_params():
    out = []
    for fmt in ("mxfp8_e4m3", "mxfp4_e2m1", "mxint8"):
        for k in (2, 6, 8, 12, 20):
            out.append(pytest.param(fmt, k, id=f"{fmt}-2^-{k}"))
    return out


@pytest.mark.parametrize("fmt,k", _tiny_sr_params())
def test_stochastic_probability_of_tiny_values(fmt, k):
    """v = 2**-k of the element's smallest quantum rounds up with probability 2**-k (binomial, 6 sigma)."""
    f = FORMATS[fmt]
    min_quantum = 2.0 ** (-f.mbits) if f.is_int else 2.0 ** (1 - f.bias - f.mbits)
    n_rows = 1 << 15
    x = torch.full((n_rows, 16), min_quantum * 2.0**-k)
    x[:, 0] = 2.0**f.emax  # scale byte 127: v = x
    t = q(x, fmt, 16, stochastic=True, seed=99)
    assert (t.scales == 127).all()
    ups = int((dq(t)[:, 1:] != 0).sum())
    draws = n_rows * 15
    mean = draws * 2.0**-k
    sigma = math.sqrt(mean * (1 - 2.0**-k))
    assert abs(ups - mean) <= 6 * sigma + 3, f"{ups} of {draws} rounded up, expected {mean:.1f} ± {sigma:.1f}"


