"""mx_convert: every backend bit-exact with the reference on random packed bytes (every code, every
scale byte 0..255, NaN/Inf codes, E8M0 clamps, partial blocks), opcheck, torch.compile."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import native_module, triton_available
from slimops.slicescale import reference as ssref
from slimops.mx.formats import get_format

from .test_convert_reference import FP_PAIRS, INT_PAIRS, assert_same

ALL_PAIRS = INT_PAIRS + FP_PAIRS


def kernel_backends() -> list:
    return [
        pytest.param("native", id="native", marks=pytest.mark.skipif(
            native_module("_C") is None or not hasattr(native_module("_C"), "mx_convert"),
            reason="slimops._C (with mx_convert) not built")),
        pytest.param("triton", id="triton", marks=pytest.mark.skipif(
            not triton_available(), reason="triton not installed")),
    ]


def random_anchor(src: str, rows: int, length: int, block_size: int, seed: int):
    """Random packed bytes and scale bytes, with the E8M0 ends over-represented."""
    f = get_format(src)
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (rows, f.packed_bytes(length)), dtype=torch.uint8, generator=g)
    if length * f.bits % 8:  # the padding bits of the last byte are zero, as quantize writes them
        keep = (length * f.bits) % 8
        data[:, -1] &= (1 << keep) - 1
    nblocks = -(-length // block_size)
    scales = torch.randint(0, 256, (rows, nblocks), dtype=torch.uint8, generator=g)
    edge = torch.tensor([0, 1, 240, 248, 250, 253, 254, 255], dtype=torch.uint8)
    pick = torch.rand(rows, nblocks, generator=g) < 0.3
    scales = torch.where(pick, edge[torch.randint(0, 8, (rows, nblocks), generator=g)], scales)
    return data, scales


def run(backend, data, scales, src, dst, bs, axis, length, rounding="nearest"):
    with slimops.use_backend(backend):
        return torch.ops.slimops.mx_convert(data, scales, src, dst, bs, axis, length, rounding)


@pytest.mark.parametrize("backend", kernel_backends())
@pytest.mark.parametrize("src,dst", ALL_PAIRS)
def test_random_bytes_bit_exact(backend, src, dst, backend_reset):
    bs = 32
    length = 150  # 4 full blocks and a partial one (also a partial 6-bit group)
    data, scales = random_anchor(src, 40, length, bs, seed=ALL_PAIRS.index((src, dst)))
    want = run("reference", data, scales, src, dst, bs, -1, length)
    got = run(backend, data, scales, src, dst, bs, -1, length)
    assert_same(got[1], want[1], f"{backend} scales")
    assert_same(got[0], want[0], f"{backend} data")


@pytest.mark.parametrize("backend", kernel_backends())
@pytest.mark.parametrize("src,dst", [("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1"), ("mxfp8_e5m2", "mxfp6_e2m3")])
@pytest.mark.parametrize("block_size,length", [(16, 16), (16, 7), (64, 130), (32, 1)])
def test_block_sizes_truncation_axes(backend, src, dst, block_size, length, backend_reset):
    data, scales = random_anchor(src, 9, length, block_size, seed=block_size + length)
    for rounding in ssref.ROUNDINGS:
        want = run("reference", data, scales, src, dst, block_size, -1, length, rounding)
        got = run(backend, data, scales, src, dst, block_size, -1, length, rounding)
        assert_same(got[0], want[0], f"{rounding} data")
        assert_same(got[1], want[1], f"{rounding} scales")
    # a non-last axis: the same bytes, moved
    d3, s3 = data.view(3, 3, -1).transpose(1, 2).contiguous(), scales.view(3, 3, -1).transpose(1, 2).contiguous()
    got = run(backend, d3, s3, src, dst, block_size, 1, length)
    want = run("reference", d3, s3, src, dst, block_size, 1, length)
    assert_same(got[0], want[0]) and assert_same(got[1], want[1])


@pytest.mark.parametrize("backend", kernel_backends())
def test_quantized_anchor_every_backend(backend, backend_reset):
    x = torch.randn(64, 96, generator=torch.Generator().manual_seed(3)) * 10
    for src, dst in (("mxint8", "mxint2"), ("mxfp8_e4m3", "mxfp6_e3m2")):
        a = slimops.mx.quantize(x, src)
        with slimops.use_backend("reference"):
            want = a.convert(dst)
        with slimops.use_backend(backend):
            got = a.convert(dst)
        assert torch.equal(got.data, want.data) and torch.equal(got.scales, want.scales)


def test_opcheck():
    a = slimops.mx.quantize(torch.randn(8, 64), "mxfp8")
    for args in ((a.data, a.scales, "mxfp8_e4m3", "mxfp4_e2m1", 32, -1, 64, "nearest"),
                 (a.data, a.scales, "mxfp8_e4m3", "mxfp8_e4m3", 32, 1, 64, "nearest"),
                 (a.data.t().contiguous(), a.scales.t().contiguous(), "mxfp8_e4m3", "mxfp6_e2m3", 32, 0, 64,
                  "truncate")):
        torch.library.opcheck(torch.ops.slimops.mx_convert.default, args)


def test_compile_fullgraph():
    a = slimops.mx.quantize(torch.randn(8, 64), "mxint8")

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(d, s):
        return torch.ops.slimops.mx_convert(d, s, "mxint8", "mxint4", 32, -1, 64)

    got = f(a.data, a.scales)
    want = a.convert("mxint4")
    assert torch.equal(got[0], want.data) and torch.equal(got[1], want.scales)
