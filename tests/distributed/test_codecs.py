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
