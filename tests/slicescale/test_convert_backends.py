"""mx_convert and mx_convert_out: every backend on every device here (C++ and the Triton interpreter on
the CPU; Triton and CUDA C++ on a GPU when one is present) bit-exact with the reference on random packed
bytes (every code, every scale byte 0..255, NaN/Inf codes, E8M0 clamps, partial blocks), the
conversion report's counts equal to the reference's, out= buffers (contiguous, strided, E8M0 scales)
and their errors, opcheck, torch.compile."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import native_module, triton_available
from slimops.mx.formats import get_format
from slimops.slicescale import reference as ssref
from slimops.slicescale.schemas import NUM_COUNTS
from slimops.testing import gpu_backends

from .test_convert_reference import FP_PAIRS, INT_PAIRS, assert_same

ALL_PAIRS = INT_PAIRS + FP_PAIRS


def device_backends() -> list:
    """(device, backend): C++ and Triton (interpreter) on the CPU, then the CUDA backends (skipped, with
    the reason, where no GPU is present)."""
    return [
        pytest.param("cpu", "native", id="cpu-native", marks=pytest.mark.skipif(
            native_module("_C") is None or not hasattr(native_module("_C"), "mx_convert"),
            reason="slimops._C (with mx_convert) not built")),
        pytest.param("cpu", "triton", id="cpu-triton", marks=pytest.mark.skipif(
            not triton_available(), reason="triton not installed")),
    ] + [pytest.param("cuda", p.values[0], id=p.id, marks=p.marks) for p in gpu_backends(nvrtc=False)]


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


def run_out(backend, data, scales, src, dst, bs, axis, length, rounding="nearest", out=None):
    """mx_convert_out into fresh buffers (or ``out``), with the report: (data, scales, counts)."""
    f = get_format(dst)
    if out is None:
        shape = list(data.shape)
        shape[axis] = f.packed_bytes(length)
        out = (torch.full(shape, 0xAA, dtype=torch.uint8, device=data.device), torch.full_like(scales, 0xAA))
    counts = torch.full((NUM_COUNTS,), -1, dtype=torch.int64, device=data.device)
    with slimops.use_backend(backend):
        torch.ops.slimops.mx_convert_out(data, scales, src, dst, bs, axis, length, rounding, *out, counts)
    return out[0], out[1], counts


def reference_out(data, scales, src, dst, bs, axis, length, rounding="nearest"):
    return run_out("reference", data.cpu(), scales.cpu(), src, dst, bs, axis, length, rounding)


@pytest.mark.parametrize("device,backend", device_backends())
@pytest.mark.parametrize("src,dst", ALL_PAIRS)
def test_random_bytes_bit_exact(device, backend, src, dst, backend_reset):
    bs = 32
    length = 150  # 4 full blocks and a partial one (also a partial 6-bit group)
    data, scales = random_anchor(src, 40, length, bs, seed=ALL_PAIRS.index((src, dst)))
    want = reference_out(data, scales, src, dst, bs, -1, length)
    got = run(backend, data.to(device), scales.to(device), src, dst, bs, -1, length)
    assert_same(got[1].cpu(), want[1], f"{backend} scales")
    assert_same(got[0].cpu(), want[0], f"{backend} data")
    got = run_out(backend, data.to(device), scales.to(device), src, dst, bs, -1, length)
    for g, w, what in zip(got, want, ("data", "scales", "counts")):
        assert_same(g.cpu(), w, f"{backend} out= {what}")


@pytest.mark.parametrize("device,backend", device_backends())
@pytest.mark.parametrize("src,dst", [("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1"), ("mxfp8_e5m2", "mxfp6_e2m3")])
@pytest.mark.parametrize("block_size,length", [(16, 16), (16, 7), (64, 130), (32, 1)])
def test_block_sizes_truncation_axes(device, backend, src, dst, block_size, length, backend_reset):
    data, scales = random_anchor(src, 9, length, block_size, seed=block_size + length)
    for rounding in ssref.ROUNDINGS:
        want = reference_out(data, scales, src, dst, block_size, -1, length, rounding)
        got = run_out(backend, data.to(device), scales.to(device), src, dst, block_size, -1, length, rounding)
        for g, w, what in zip(got, want, ("data", "scales", "counts")):
            assert_same(g.cpu(), w, f"{rounding} {what}")
    # a non-last axis: the same bytes, moved
    d3, s3 = data.view(3, 3, -1).transpose(1, 2).contiguous(), scales.view(3, 3, -1).transpose(1, 2).contiguous()
    got = run(backend, d3.to(device), s3.to(device), src, dst, block_size, 1, length)
    want = run("reference", d3, s3, src, dst, block_size, 1, length)
    assert_same(got[0].cpu(), want[0]) and assert_same(got[1].cpu(), want[1])


@pytest.mark.parametrize("device,backend", device_backends())
def test_quantized_anchor_every_backend(device, backend, backend_reset):
    x = torch.randn(64, 96, generator=torch.Generator().manual_seed(3)) * 10
    for src, dst in (("mxint8", "mxint2"), ("mxfp8_e4m3", "mxfp6_e3m2")):
        a = slimops.mx.quantize(x, src)
        with slimops.use_backend("reference"):
            want, want_report = a.convert(dst, report=True)
        with slimops.use_backend(backend):
            got, got_report = a.to(device).convert(dst, report=True)
        assert torch.equal(got.data.cpu(), want.data) and torch.equal(got.scales.cpu(), want.scales)
        assert got_report == want_report and got_report.blocks == 64 * 3


@pytest.mark.parametrize("device,backend", device_backends())
def test_out_buffers(device, backend, backend_reset):
    """out= writes the same bytes: contiguous, strided (a transposed buffer), E8M0 scales, any axis."""
    data, scales = random_anchor("mxfp8_e4m3", 24, 96, 32, seed=5)
    data, scales = data.to(device), scales.to(device)
    want = run("reference", data.cpu(), scales.cpu(), "mxfp8_e4m3", "mxfp6_e2m3", 32, -1, 96)
    strided = (torch.empty(72, 24, dtype=torch.uint8, device=device).t(),
               torch.empty(3, 24, dtype=torch.float8_e8m0fnu, device=device).t())
    for out in (None, strided):
        got = run_out(backend, data, scales, "mxfp8_e4m3", "mxfp6_e2m3", 32, -1, 96, out=out)
        assert_same(got[0].cpu(), want[0], "data")
        assert_same(got[1].view(torch.uint8).cpu(), want[1], "scales")
    # axis 0: the buffers in the caller's layout
    d0, s0 = data.t().contiguous(), scales.t().contiguous()
    got = run_out(backend, d0, s0, "mxfp8_e4m3", "mxfp6_e2m3", 32, 0, 96)
    assert_same(got[0].cpu(), want[0].t(), "axis 0 data") and assert_same(got[1].cpu(), want[1].t(), "axis 0 scales")
    # the API: MXTensor.convert(out=...) returns an MXTensor over the caller's buffers
    a = slimops.mx.MXTensor(data, scales, "mxfp8_e4m3", 32, 1, torch.Size([24, 96]))
    bufs = (torch.empty(24, 72, dtype=torch.uint8, device=device), torch.empty(24, 3, dtype=torch.uint8, device=device))
    with slimops.use_backend(backend):
        t = a.convert("mxfp6_e2m3", out=bufs)
    assert t.data is bufs[0] and t.scales is bufs[1] and t.fmt == "mxfp6_e2m3"
    assert_same(bufs[0].cpu(), want[0])


def test_out_errors():
    """Wrong out= buffers are refused with the argument named, before any kernel runs."""
    a = slimops.mx.quantize(torch.randn(4, 64), "mxint8")
    op = torch.ops.slimops.mx_convert_out
    args = (a.data, a.scales, "mxint8", "mxint4", 32, -1, 64, "nearest")
    good = (torch.empty(4, 32, dtype=torch.uint8), torch.empty(4, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"out_data has shape \[4, 33\], expected \[4, 32\]"):
        op(*args, torch.empty(4, 33, dtype=torch.uint8), good[1])
    with pytest.raises(ValueError, match="out_scales has shape"):
        op(*args, good[0], torch.empty(4, 3, dtype=torch.uint8))
    with pytest.raises(TypeError, match="out_data must be torch.uint8"):
        op(*args, good[0].to(torch.int8), good[1])
    with pytest.raises(TypeError, match="counts must be an int64"):
        op(*args, *good, torch.empty(NUM_COUNTS, dtype=torch.int32))
    with pytest.raises(ValueError, match="counts must be a contiguous tensor of shape"):
        op(*args, *good, torch.empty(NUM_COUNTS + 1, dtype=torch.int64))
    with pytest.raises(ValueError, match="out_scales has shape"):
        a.convert("mxint4", out=(good[0], good[1][:, :1]))
    with pytest.raises(TypeError, match="pair of tensors"):
        a.convert("mxint4", out=good[0])
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="out_data must be on cpu"):
            op(*args, good[0].cuda(), good[1])


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_opcheck(device):
    a = slimops.mx.quantize(torch.randn(8, 64), "mxfp8").to(device)
    for args in ((a.data, a.scales, "mxfp8_e4m3", "mxfp4_e2m1", 32, -1, 64, "nearest"),
                 (a.data, a.scales, "mxfp8_e4m3", "mxfp8_e4m3", 32, 1, 64, "nearest"),
                 (a.data.t().contiguous(), a.scales.t().contiguous(), "mxfp8_e4m3", "mxfp6_e2m3", 32, 0, 64,
                  "truncate")):
        torch.library.opcheck(torch.ops.slimops.mx_convert.default, args)
    out = (torch.empty(8, 32, dtype=torch.uint8, device=device), torch.empty(8, 2, dtype=torch.uint8, device=device))
    counts = torch.empty(NUM_COUNTS, dtype=torch.int64, device=device)
    args = (a.data, a.scales, "mxfp8_e4m3", "mxfp4_e2m1", 32, -1, 64, "nearest")
    torch.library.opcheck(torch.ops.slimops.mx_convert_out.default, (*args, *out, counts))
    torch.library.opcheck(torch.ops.slimops.mx_convert_out.default, (*args, *out, None))


def test_compile_fullgraph():
    a = slimops.mx.quantize(torch.randn(8, 64), "mxint8")

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(d, s):
        return torch.ops.slimops.mx_convert(d, s, "mxint8", "mxint4", 32, -1, 64)

    got = f(a.data, a.scales)
    want = a.convert("mxint4")
    assert torch.equal(got[0], want.data) and torch.equal(got[1], want.scales)
