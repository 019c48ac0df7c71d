"""The Triton MX kernels (backends/triton/mx.py) against the reference, bit for bit.

Without a GPU they run in Triton's interpreter on CPU tensors (TRITON_INTERPRET=1, set by
conftest.py); with one, on CUDA tensors. Shapes stay small: the interpreter is slow.
"""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import triton_available, triton_interpret
from slimops.mx import reference as ref
from slimops.mx.formats import BLOCK_SIZES, FORMATS

from slimops.testing import assert_bits_equal
from .test_mx_backends import DTYPES, check_against_reference, make_input, run

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytestmark = pytest.mark.skipif(
    not triton_available() or (DEVICE == "cpu" and not triton_interpret()),
    reason="triton is not importable (or, without a GPU, TRITON_INTERPRET=1 was not set before importing it)")


def tmx():
    from slimops.mx import triton as mx

    return mx


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_triton_matches_reference(fmt, dtype):
    check_against_reference("triton", DEVICE, fmt, (5, 123), dtype)
    check_against_reference("triton", DEVICE, fmt, (3, 97), dtype, block_size=64)
    check_against_reference("triton", DEVICE, fmt, (1, 1), dtype, block_size=16)


@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("scale_mode", ["floor", "rceil"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_triton_axes_modes(block_size, axis, scale_mode, stochastic):
    dtype = DTYPES[(block_size // 16 + axis + stochastic) % 3]  # every dtype in turn
    for fmt in ("mxfp8_e5m2", "mxfp6_e3m2", "mxfp4", "mxint8", "mxint2"):
        check_against_reference("triton", DEVICE, fmt, (6, 5, 40), dtype, block_size, axis,
                                scale_mode=scale_mode, stochastic=stochastic, seed=1234)


def _amax_sweep(max_value: float) -> torch.Tensor:
    """Block maxima around every max_value * 2**n (the rceil rounding edges), subnormals, random bits."""
    bits = []
    for n in range(-160, 130):
        v = torch.tensor(max_value * 2.0 ** n, dtype=torch.float64).to(torch.float32)
        if torch.isfinite(v) and v != 0:
            b = int(v.view(torch.int32))
            bits += [b + d for d in range(-2, 3)]
    g = torch.Generator().manual_seed(0)
    bits += torch.randint(1, 0x7F800000, (500,), generator=g).tolist()
    bits += list(range(0, 24)) + [0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F800000, 0x7FC00000, 0xFFC00000 - 2**32]
    return torch.tensor(bits, dtype=torch.int32).view(torch.float32)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_triton_scale_and_element_edges(fmt):
    """Scale bytes at every rounding edge, fp32 subnormals, NaN/Inf, ±0, tiny elements (SR shifts > 31)."""
    f = FORMATS[fmt]
    a = _amax_sweep(f.max_value)
    x = torch.zeros(a.numel(), 16)
    x[:, 0] = a
    x[:, 1] = -a * 0.37
    x[:, 2] = a * 1e-30
    x[:, 3] = -0.0
    x[:, 4] = a * 0.7500001
    x = x.to(DEVICE)
    for mode in ("floor", "rceil"):
        for stochastic in (False, True):
            d, s = tmx().quantize_2d(x, f, 16, mode, stochastic, 7)
            rd, rs = ref.quantize_2d(x.cpu(), f, 16, mode, stochastic, 7)
            assert_bits_equal(s, rs, f"scales {mode}")
            assert_bits_equal(d, rd, f"data {mode} stochastic={stochastic}")
            for dtype in DTYPES:
                assert_bits_equal(tmx().fake_quantize_2d(x.to(dtype), f, 16, mode, stochastic, 7),
                                  ref.fake_quantize_2d(x.cpu().to(dtype), f, 16, mode, stochastic, 7), "fake")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_triton_dequantize_every_byte(fmt):
    """Every scale byte (0..255, NaN included) with random codes (fp8 NaN/Inf, int -2**(b-1)): fp16/bf16 rounding."""
    f = FORMATS[fmt]
    g = torch.Generator().manual_seed(1)
    length = 48  # a partial last block of 16
    data = torch.randint(0, 256, (256, f.packed_bytes(length)), generator=g, dtype=torch.uint8)
    if f.bits == 8:
        data[:, 0] = torch.arange(256, dtype=torch.uint8)
    scales = torch.stack([torch.arange(256), torch.randint(0, 256, (256,), generator=g)], 1).to(torch.uint8)
    for dtype in DTYPES:
        got = tmx().dequantize_2d(data.to(DEVICE), scales.to(DEVICE), f, 32, length, dtype)
        assert_bits_equal(got, ref.dequantize_2d(data, scales, f, 32, length, dtype), f"dequantize to {dtype}")


def test_triton_non_contiguous_and_seeds():
    x = make_input((64, 96), torch.float32)[::2, 5:90].t().to(DEVICE)  # a strided view
    assert not x.is_contiguous()
    for fmt in ("mxfp8", "mxfp6_e2m3", "mxint4"):
        kw = dict(scale_mode="rceil", stochastic=True, seed=3)
        ref_t = run("reference", slimops.mx.quantize, x, fmt, **kw)
        got = run("triton", slimops.mx.quantize, x, fmt, **kw)
        assert_bits_equal(got.data, ref_t.data, "data")
        assert_bits_equal(got.scales, ref_t.scales, "scales")
        assert_bits_equal(run("triton", slimops.mx.fake_quantize, x, fmt, **kw),
                          run("reference", slimops.mx.fake_quantize, x, fmt, **kw), "fake_quantize")
    y = make_input((4, 64), torch.bfloat16, seed=2).to(DEVICE)
    for seed in (0, 1, 2**31 + 5, 2**32 - 1, 2**40 + 9, -1):
        for fn in (slimops.mx.fake_quantize, lambda *a, **k: slimops.mx.quantize(*a, **k).data):
            assert_bits_equal(run("triton", fn, y, "mxfp4", stochastic=True, seed=seed),
                              run("reference", fn, y, "mxfp4", stochastic=True, seed=seed), f"seed {seed}")


def test_triton_opcheck():
    x = make_input((40, 4), torch.float32).to(DEVICE).t()  # non-contiguous
    ops = torch.ops.slimops
    with slimops.use_backend("triton"):
        data, scales = ops.mx_quantize(x, "mxfp6_e3m2", 16, 1, "rceil", True, 5)
        torch.library.opcheck(ops.mx_quantize, (x, "mxfp6_e3m2", 16, 1, "rceil", True, 5))
        torch.library.opcheck(ops.mx_dequantize, (data, scales, "mxfp6_e3m2", 16, 1, 40, torch.bfloat16))
        torch.library.opcheck(ops.mx_fake_quantize, (x.requires_grad_(), "mxfp4", 32, 0, "floor", False, 0))


def test_triton_64bit_offsets(monkeypatch):
    """The IDX64 path (tensors of 2**31 elements or more), forced on a small input."""
    m = tmx()
    tiling = m._tiling
    monkeypatch.setattr(m, "_tiling", lambda *a: (lambda g, meta: (g, dict(meta, IDX64=True)))(*tiling(*a)))
    for fmt in ("mxfp8_e4m3", "mxfp6_e2m3", "mxint4"):
        check_against_reference("triton", DEVICE, fmt, (3, 97), torch.bfloat16, 32, scale_mode="rceil",
                                stochastic=True, seed=9)
