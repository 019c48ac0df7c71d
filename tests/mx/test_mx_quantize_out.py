"""mx_quantize_out and slimops.mx.quantize(..., out=(data, scales)): the same bytes as a plain call on
every backend and device here, into contiguous buffers (no allocation), strided ones and E8M0 scales,
along any axis; wrong buffers refused with the argument named; opcheck."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.mx.formats import FORMATS
from slimops._backend import triton_available
from slimops.testing import assert_bits_equal, device_backends

BACKENDS = device_backends() + [pytest.param("cpu", "triton", id="cpu-triton", marks=pytest.mark.skipif(
    not triton_available(), reason="triton not installed"))]  # the interpreter: float32 only, for time


def buffers(x: torch.Tensor, fmt: str, block_size: int = 32, axis: int = -1, strided: bool = False):
    f = FORMATS[slimops.mx.get_format(fmt).name]
    ax = axis % x.dim()
    ds, ss = list(x.shape), list(x.shape)
    ds[ax], ss[ax] = f.packed_bytes(x.shape[ax]), -(-x.shape[ax] // block_size)
    if not strided:
        return torch.empty(ds, dtype=torch.uint8, device=x.device), torch.empty(ss, dtype=torch.uint8, device=x.device)
    rev = list(range(x.dim() - 1, -1, -1))
    return (torch.empty(ds[::-1], dtype=torch.uint8, device=x.device).permute(*rev),
            torch.empty(ss[::-1], dtype=torch.float8_e8m0fnu, device=x.device).permute(*rev))


@pytest.mark.parametrize("device,backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_out_equals_plain_call(device, backend, dtype, backend_reset):
    if device == "cpu" and backend == "triton" and dtype != torch.float32:
        pytest.skip("the Triton interpreter: float32 only, for time")
    x = (torch.randn(6, 100, generator=torch.Generator().manual_seed(0)) * 7).to(dtype).to(device)
    x[1, 3] = float("nan")
    for fmt in FORMATS:
        for axis, strided, stochastic in ((-1, False, False), (-1, True, False), (0, False, True)):
            with slimops.use_backend(backend):
                want = slimops.mx.quantize(x, fmt, 32, axis, stochastic=stochastic, seed=7)
                out = buffers(x, fmt, 32, axis, strided)
                got = slimops.mx.quantize(x, fmt, 32, axis, stochastic=stochastic, seed=7, out=out)
            assert got.data is out[0] and got.scales is out[1] and got.shape == x.shape and got.axis == axis % 2
            what = f"{fmt} {dtype} axis {axis} strided {strided}"
            assert_bits_equal(out[0].cpu(), want.data.cpu(), what + ": data")
            assert_bits_equal(out[1].view(torch.uint8).cpu(), want.scales.cpu(), what + ": scales")


def test_out_writes_in_place_and_empty():
    x = torch.randn(4, 64)
    out = buffers(x, "mxfp4")
    ptrs = (out[0].data_ptr(), out[1].data_ptr())
    t = slimops.mx.quantize(x, "mxfp4", out=out)
    assert (t.data.data_ptr(), t.scales.data_ptr()) == ptrs
    e = torch.zeros(0, 64)
    t = slimops.mx.quantize(e, "mxint8", out=buffers(e, "mxint8"))
    assert t.data.shape == (0, 64) and t.scales.shape == (0, 2)


def test_out_errors():
    x = torch.randn(4, 64)
    good = buffers(x, "mxfp8")
    with pytest.raises(ValueError, match=r"out_data has shape \[4, 63\], expected \[4, 64\]"):
        slimops.mx.quantize(x, "mxfp8", out=(torch.empty(4, 63, dtype=torch.uint8), good[1]))
    with pytest.raises(ValueError, match="out_scales has shape"):
        slimops.mx.quantize(x, "mxfp8", out=(good[0], torch.empty(4, 3, dtype=torch.uint8)))
    with pytest.raises(TypeError, match="out_scales must be torch.uint8 or torch.float8_e8m0fnu"):
        slimops.mx.quantize(x, "mxfp8", out=(good[0], good[1].float()))
    with pytest.raises(TypeError, match="pair of tensors"):
        slimops.mx.quantize(x, "mxfp8", out=good[0])
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="out_data must be on"):
            slimops.mx.quantize(x, "mxfp8", out=(good[0].cuda(), good[1]))


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_opcheck(device):
    x = torch.randn(8, 64, device=device)
    for axis, fmt in ((-1, "mxfp8"), (0, "mxfp6"), (1, "mxint4")):
        out = buffers(x, fmt, 32, axis)
        torch.library.opcheck(torch.ops.slimops.mx_quantize_out.default,
                              (x, slimops.mx.get_format(fmt).name, 32, axis, "floor", False, 0, *out))
