"""Codecs on one process: round-trip error within each codec's bound, exact byte counts, the rowq op's contract."""

from __future__ import annotations

import math

import pytest
import torch

import slimops  # noqa: F401
from slimops.distributed import codecs
from slimops.distributed.codecs import IntCodec, MXCodec, error_bound, get_codec

WIRE = [c for c in codecs.CODECS if c != "learned"]


@pytest.mark.parametrize("name", WIRE)
@pytest.mark.parametrize("shape", [(37, 16), (5, 7), (13, 70), (0, 16)])
def test_roundtrip_error_and_bytes(name, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape) * torch.logspace(-3, 3, shape[0])[:, None] if shape[0] else torch.randn(*shape)
    c = get_codec(name)
    buf = c.encode(x, seed=7)
    assert buf.dtype == torch.uint8 and buf.dim() == 1
    assert buf.numel() == c.nbytes(*shape)
    y = c.decode(buf, *shape)
    assert y.shape == x.shape and y.dtype == torch.float32
    err = (y - x).abs()
    bound = error_bound(c, x)
    assert (err <= bound).all(), f"{name}: max excess {(err - bound).max().item()}"


def test_byte_formulas():
    rows, f = 11, 16
    assert get_codec("none").nbytes(rows, f) == rows * f * 4
    assert get_codec("mxfp8").nbytes(rows, f) == rows * (16 + 1)
    assert get_codec("mxfp6").nbytes(rows, f) == rows * (12 + 1)
    assert get_codec("mxfp4").nbytes(rows, f) == rows * (8 + 1)
    assert get_codec("mxint2").nbytes(rows, f) == rows * (4 + 1)
    assert get_codec("mxint8").nbytes(rows, 70) == rows * (70 + 3)
    assert get_codec("int8").nbytes(rows, f) == rows * (16 + 8)
    assert get_codec("int4").nbytes(rows, 7) == rows * (4 + 8)
    assert get_codec("int2").nbytes(rows, f) == rows * (4 + 8)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_rowq_stochastic_is_unbiased(bits):
    x = torch.rand(1, 64).repeat(2000, 1)
    c = IntCodec(bits)
    ys = torch.stack([c.decode(c.encode(x, seed=s), *x.shape) for s in range(3)])
    mean = ys.mean((0, 1))
    step = (x.max() - x.min()) / ((1 << bits) - 1)
    assert (mean - x[0]).abs().max() < 0.05 * step + 1e-6


def test_rowq_deterministic_for_seed_and_nearest_mode():
    x = torch.randn(9, 33)
    a = torch.ops.slimops.rowq_quantize(x, 4, True, 3)
    b = torch.ops.slimops.rowq_quantize(x, 4, True, 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    d, p = torch.ops.slimops.rowq_quantize(x, 8, False, 0)
    y = torch.ops.slimops.rowq_dequantize(d, p, 8, 33, torch.float32)
    assert ((y - x).abs() <= p[:, 1:2] / 2 * (1 + 1e-5) + 1e-6).all()


def test_rowq_constant_rows_and_packing():
    x = torch.full((3, 5), 2.5)
    d, p = torch.ops.slimops.rowq_quantize(x, 2, True, 0)
    assert d.shape == (3, 2) and torch.equal(p[:, 0], torch.full((3,), 2.5)) and (p[:, 1] == 0).all()
    assert torch.equal(torch.ops.slimops.rowq_dequantize(d, p, 2, 5, torch.float32), x)
    # codes 0..3 in one row of four 2-bit codes: 0b11100100 little-endian
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    d, p = torch.ops.slimops.rowq_quantize(x, 2, False, 0)
    assert d.tolist() == [[0b11100100]]


def test_rowq_bad_arguments():
    with pytest.raises(ValueError, match="bits must be one of"):
        torch.ops.slimops.rowq_quantize(torch.randn(2, 4), 3, True, 0)
    with pytest.raises(ValueError, match="must be 2-d"):
        torch.ops.slimops.rowq_quantize(torch.randn(4), 4, True, 0)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        torch.ops.slimops.rowq_quantize(torch.ones(2, 4, dtype=torch.int32), 4, True, 0)
    d, p = torch.ops.slimops.rowq_quantize(torch.randn(2, 8), 4, True, 0)
    with pytest.raises(ValueError, match="expected \\(rows, 5\\)"):
        torch.ops.slimops.rowq_dequantize(d, p, 4, 9, torch.float32)
    with pytest.raises(ValueError, match="params has shape"):
        torch.ops.slimops.rowq_dequantize(d, p[:1], 4, 8, torch.float32)


def test_rowq_opcheck():
    x = torch.randn(6, 19)
    torch.library.opcheck(torch.ops.slimops.rowq_quantize, (x, 4, True, 1))
    d, p = torch.ops.slimops.rowq_quantize(x, 4, True, 1)
    torch.library.opcheck(torch.ops.slimops.rowq_dequantize, (d, p, 4, 19, torch.float32))


def test_mx_codec_uses_packed_mx_bytes():
    x = torch.randn(4, 64)
    c = MXCodec("mxfp4")
    buf = c.encode(x, 0)
    t = slimops.mx.quantize(x, "mxfp4")
    assert torch.equal(buf, torch.cat([t.data.reshape(-1), t.scales.reshape(-1)]))
    assert math.isclose(c.ratio, 8.0)


def test_mx_stochastic_codec_is_reproducible():
    x = torch.randn(8, 32)
    c = MXCodec("mxint4", stochastic=True)
    assert torch.equal(c.encode(x, 5), c.encode(x, 5))
    assert not torch.equal(c.encode(x, 5), c.encode(x, 6))
    assert ((c.decode(c.encode(x, 5), 8, 32) - x).abs() <= error_bound(c, x)).all()


def test_unknown_codec():
    with pytest.raises(ValueError, match="codec must be one of"):
        get_codec("fp3")
