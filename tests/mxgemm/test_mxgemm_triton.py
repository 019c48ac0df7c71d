"""mx_linear and mx_linear_backward on the Triton backend, in the interpreter on CPU tensors (small shapes:
the interpreter costs per program instance), or on a GPU when there is one."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import triton_available, triton_interpret
from slimops.mx.formats import FORMATS

from .helpers import DTYPES, assert_linear_close, dequantize, random_codes, random_weight, run

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.skipif(not triton_available() or (DEVICE == "cpu" and not triton_interpret()),
                                reason="needs triton, and TRITON_INTERPRET=1 without a GPU")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_forward(fmt, backend_reset):
    """Every dtype, a bias, K not a multiple of the tile or block (a partial 6-bit group), odd M and N."""
    for i, dtype in enumerate(DTYPES):
        bs = (16, 32, 64)[i]
        data, scales = random_weight(fmt, 37, 101, bs, seed=i)
        x = torch.randn(5, 101, generator=torch.Generator().manual_seed(i)).to(dtype)
        bias = torch.randn(37) if i != 1 else None
        d, s, xx, b = (t.to(DEVICE) if t is not None else None for t in (data, scales, x, bias))
        y = run("triton", xx, d, s, fmt, bs, b).cpu()
        assert_linear_close(y, x, data, scales, fmt, bs, bias, f"triton {fmt} {dtype} bs {bs}")


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxint4"])
def test_edge_codes_and_scales(fmt, backend_reset):
    """fp8 NaN / Inf codes and NaN, tiny and saturating scale bytes, through the MX family's Triton decode."""
    data, scales = random_codes(fmt, 16, 64, 32, seed=3, specials=True)
    scales[1, 0], scales[2, 1], scales[3, 0] = 0xFF, 0, 254
    x = torch.randn(3, 64) * 2.0**-12
    y = run("triton", x.to(DEVICE), data.to(DEVICE), scales.to(DEVICE), fmt, 32).cpu()
    assert_linear_close(y, x, data, scales, fmt, 32, None, f"triton {fmt} edges")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_backward(dtype, backend_reset):
    data, scales = random_weight("mxfp6_e2m3", 70, 90, 32, seed=4)
    w = dequantize(data, scales, "mxfp6_e2m3", 32, 90)
    x = torch.randn(6, 90).to(dtype).to(DEVICE).requires_grad_()
    g = torch.randn(6, 70).to(dtype)
    with slimops.use_backend("triton"):
        y = torch.ops.slimops.mx_linear(x, data.to(DEVICE), scales.to(DEVICE), "mxfp6_e2m3", 32, None)
        (gx,) = torch.autograd.grad(y, x, g.to(DEVICE))
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=5e-2, rtol=1e-2)
    torch.testing.assert_close(gx.cpu(), (g.double() @ w.double()).to(dtype), **tol)


@pytest.mark.parametrize("fmt", ["mxint8", "mxfp6_e3m2", "mxfp4_e2m1", "mxint2"])
@pytest.mark.parametrize("split", [1, 3])
def test_forward_decode_tiles_and_split_k(fmt, split, backend_reset):
    """The decode-sized tiles (BM = 16) with K split among programs (fp32 parts added atomically): every code
    width's row loads, K with a partial tile and a partial block, a bias added once."""
    from slimops.mx.formats import get_format
    from slimops.mxgemm import triton as mxt

    data, scales = random_weight(fmt, 45, 300, 32, seed=7)
    x = torch.randn(3, 300, generator=torch.Generator().manual_seed(7))
    bias = torch.randn(45)
    for dtype in (torch.float32, torch.bfloat16):
        xx = x.to(dtype)
        y = mxt.linear_2d(xx.to(DEVICE), data.to(DEVICE), scales.to(DEVICE), get_format(fmt), 32, bias.to(DEVICE),
                          dot_scaled=False, tiles=dict(BM=16, BN=32, BK=64, SPLIT=split)).cpu()
        assert y.dtype == dtype
        assert_linear_close(y, xx, data, scales, fmt, 32, bias, f"triton {fmt} {dtype} split {split}")
