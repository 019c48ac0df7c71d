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
