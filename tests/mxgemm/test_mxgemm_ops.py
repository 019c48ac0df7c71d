"""mx_linear on CPU (reference and C++ kernels): every format, dtype and block size, odd shapes,
3-D and non-contiguous x, bias, edge values, empty tensors, gradients, opcheck, compile, bad input."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.mx.formats import FORMATS, get_format
from slimops.testing import cpu_backends

from .helpers import DTYPES, assert_linear_close, random_codes, random_weight, run

FMTS = list(FORMATS)
# (M, K, N): M = 1, 2 and 3 take the small-M kernels (register tiles of 1, 2, 4 rows; M <= 4); with bf16 x,
# 9, 16 and 40 the medium-M one (dot products on decoded panels; M <= 64) and 70 the panel GEMM (fp32 and fp16 x:
# the panel GEMM from M = 5); K not a multiple of any chunk, block or group; odd N.
SHAPES = [(1, 4099, 67), (3, 333, 65), (16, 200, 33), (2, 17, 7), (9, 64, 70), (40, 417, 37), (70, 130, 37)]


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fmt", FMTS)
def test_formats_dtypes_blocks_shapes(backend, dtype, fmt, backend_reset):
    for i, (block_size, (m, k, n)) in enumerate([(bs, s) for bs in (16, 32, 64) for s in SHAPES]):
        if backend == "reference" and (block_size != 32 or k > 400):
            continue  # the oracle itself (pure PyTorch, slow): the small cases at block 32
        data, scales = random_weight(fmt, n, k, block_size, seed=i)
        x = torch.randn(m, k, generator=torch.Generator().manual_seed(i)).to(dtype)
        bias = torch.randn(n).to(dtype) if i % 2 else None
        y = run(backend, x, data, scales, fmt, block_size, bias)
        assert_linear_close(y, x, data, scales, fmt, block_size, bias, f"{backend} {fmt} {dtype} bs {block_size} "
                                                                        f"M {m} K {k} N {n}")


@pytest.mark.parametrize("fmt", FMTS)
def test_every_code(fmt, backend_reset):
    """Random codes (every code of the format, the MXINT -2^(b-1) one included) in bf16 and fp32."""
    for dtype in (torch.bfloat16, torch.float32):
        for m in (1, 5, 24, 67):
            data, scales = random_codes(fmt, 48, 250, 32, seed=m)
            x = torch.randn(m, 250, generator=torch.Generator().manual_seed(m)).to(dtype)
            assert_linear_close(run("native", x, data, scales, fmt, 32), x, data, scales, fmt, 32,
                                what=f"{fmt} {dtype} M {m}")


@pytest.mark.parametrize("fmt", FMTS)
def test_edge_scales_and_codes(fmt, backend_reset):
    """Rows with a NaN-scale block, an all-zero block (byte 0), tiny blocks (byte 0 and 1 with nonzero
    codes), blocks that saturate fp32 (the largest bytes), fp8 NaN / Inf codes: each such row gets the
    reference's semantics; the other rows of the same call take the fast kernels."""
    f = get_format(fmt)
    k, n, bs = 160, 12, 32
    data, scales = random_codes(fmt, n, k, bs, seed=1)
    scales[1, 2] = 0xFF                              # NaN block
    scales[2, 0] = 0                                  # tiny values
    scales[3, 4] = 1
    scales[4, 1] = 254                                # saturates (or is huge)
    scales[5, 3] = 253 - f.emax                       # the largest byte that cannot saturate
    codes = slimops.mx.reference.unpack(data, f.bits, k)
    codes[6, 32:64] = 0                               # all-zero block with byte 0
    scales[6, 1] = 0
    codes[4, 32:64] = 0                               # one nonzero code in the saturating block
    codes[4, 40] = f.max_code
    if f.has_nan_code:
        codes[7, 50] = 0x7F if f.name == "mxfp8_e4m3" else 0x7C   # E4M3 NaN / E5M2 +Inf
        codes[8, 70] = 0xFF if f.name == "mxfp8_e4m3" else 0xFD   # -NaN / NaN
    data = slimops.mx.reference.pack(codes, f.bits)
    for dtype in DTYPES:
        for m in (1, 3, 20, 66):
            x = torch.randn(m, k, generator=torch.Generator().manual_seed(m)).to(dtype) * 2.0**-12
            x[:, 70] = 0.5  # no zero times the Inf code
            y = run("native", x, data, scales, fmt, bs)
            assert_linear_close(y, x, data, scales, fmt, bs, what=f"{fmt} {dtype} M {m}")
            assert torch.isnan(y[:, 1]).all()


@pytest.mark.parametrize("fmt", ["mxint4", "mxfp4_e2m1", "mxfp8_e4m3", "mxfp6_e3m2", "mxint8"])
def test_edge_x(fmt, backend_reset):
    """x with NaN, +-Inf, zeros, subnormals (bf16 dot products cannot take them: fp32 lanes instead) and
    values past 2^100 (the whole call takes the generic kernel)."""
    k, n, bs = 130, 20, 32
    data, scales = random_weight(fmt, n, k, bs, seed=3)
    base = torch.randn(4, k, generator=torch.Generator().manual_seed(4))
    cases = {"nan": (0, 5, float("nan")), "inf": (1, 7, float("inf")), "-inf": (2, 9, float("-inf")),
             "subnormal": (3, 11, 1e-39), "huge": (0, 13, 1e36), "zero-row": None}
    for name, spec in cases.items():
        for dtype in DTYPES:
            x = base.clone()
            if spec is None:
                x[2] = 0.0
            else:
                r, c, v = spec
                if dtype == torch.float16 and name in ("subnormal", "huge"):
                    v = 1e-6 if name == "subnormal" else 6e4
                x[r, c] = v
            x = x.to(dtype)
            for rows in (x[:1], x, torch.cat([x] * 6), torch.cat([x] * 17)):
                assert_linear_close(run("native", rows, data, scales, fmt, bs), rows, data, scales, fmt, bs,
                                    what=f"{fmt} {dtype} x {name} M {rows.shape[0]}")


@pytest.mark.parametrize("backend", cpu_backends())
def test_layouts_bias_and_e8m0(backend, backend_reset):
    """3-D x, a non-contiguous x (a transposed view), fp32 bias with bf16 x, float8_e8m0fnu scales."""
    data, scales = random_weight("mxfp4", 24, 96, 32, seed=5)
    x3 = torch.randn(2, 3, 96).to(torch.bfloat16)
    bias = torch.randn(24)
    y = run(backend, x3, data, scales.view(torch.float8_e8m0fnu), "mxfp4", 32, bias)
    assert y.shape == (2, 3, 24)
    assert_linear_close(y, x3, data, scales, "mxfp4", 32, bias, "3-D")
    xt = torch.randn(96, 5).t()
    assert not xt.is_contiguous()
    assert_linear_close(run(backend, xt, data, scales, "mxfp4", 32), xt, data, scales, "mxfp4", 32, what="view")


@pytest.mark.parametrize("backend", cpu_backends())
def test_empty(backend, backend_reset):
    data, scales = random_weight("mxint8", 6, 64, 32)
    assert run(backend, torch.randn(0, 64), data, scales, "mxint8", 32).shape == (0, 6)
    assert run(backend, torch.randn(2, 0, 64), data, scales, "mxint8", 32).shape == (2, 0, 6)
    e_data, e_scales = random_weight("mxint8", 0, 64, 32)
    assert run(backend, torch.randn(3, 64), e_data, e_scales, "mxint8", 32).shape == (3, 0)
    z_data, z_scales = torch.zeros(4, 0, dtype=torch.uint8), torch.zeros(4, 0, dtype=torch.uint8)
    bias = torch.randn(4)
    y = run(backend, torch.randn(3, 0), z_data, z_scales, "mxint4", 32, bias)  # K = 0: y is the bias
    assert torch.equal(y, bias.expand(3, 4))


def test_bad_input():
    data, scales = random_weight("mxint4", 8, 64, 32)
    x = torch.randn(2, 64)
    op = torch.ops.slimops.mx_linear
    with pytest.raises(ValueError, match="K does not match"):
        op(torch.randn(2, 96), data, scales, "mxint4", 32)
    with pytest.raises(ValueError, match="w_scales has shape"):
        op(x, data, scales[:, :1], "mxint4", 32)
    with pytest.raises(TypeError, match="x must be float32"):
        op(x.double(), data, scales, "mxint4", 32)
    with pytest.raises(TypeError, match="w_data must be a uint8"):
        op(x, data.to(torch.int8), scales, "mxint4", 32)
    with pytest.raises(TypeError, match="w_scales must be a uint8"):
        op(x, data, scales.float(), "mxint4", 32)
    with pytest.raises(ValueError, match="w_fmt: .*unknown MX format"):
        op(x, data, scales, "mxint5", 32)
    with pytest.raises(ValueError, match="block_size must be one of"):
        op(x, data, scales, "mxint4", 48)
    with pytest.raises(ValueError, match="bias has shape"):
        op(x, data, scales, "mxint4", 32, torch.randn(9))
    with pytest.raises(ValueError, match="one device"):
        op(x.to("meta"), data, scales, "mxint4", 32)
    with pytest.raises(ValueError, match="x must have at least one dimension"):
        op(torch.tensor(1.0), data, scales, "mxint4", 32)
    with pytest.raises(ValueError, match="w_data must be 2-D"):
        op(x, data[None], scales, "mxint4", 32)
    with pytest.raises(ValueError, match="x has 63 features"):
        slimops.mxgemm.linear(torch.randn(2, 63), slimops.mx.quantize(torch.randn(8, 64), "mxfp6_e2m3"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("m", [1, 24])
def test_gradients(dtype, m, backend_reset):
    """grad of x (mx_linear_backward through the packed weight) and of bias against autograd of the
    reference (x @ W.T + b with W the exact weight); no gradient for the packed weight."""
    fmt, bs, k, n = "mxfp4", 32, 100, 70
    data, scales = random_weight(fmt, n, k, bs, seed=7)
    w = slimops.mx.MXTensor(data, scales, fmt, bs, 1, (n, k)).dequantize(torch.float32)
    x = torch.randn(m, 3, k).to(dtype).requires_grad_()
    bias = torch.randn(n, requires_grad=True)
    g = torch.randn(m, 3, n).to(dtype)
    for backend in ("reference", "native"):
        with slimops.use_backend(backend):
            y = torch.ops.slimops.mx_linear(x, data, scales, fmt, bs, bias)
            gx, gb = torch.autograd.grad(y, (x, bias), g)
        want_x = (g.double() @ w.double()).to(dtype)
        assert gx.dtype == dtype and gb.dtype == torch.float32
        tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=0.1, rtol=2e-2)
        torch.testing.assert_close(gx, want_x, **tol)
        torch.testing.assert_close(gb, g.float().sum((0, 1)), atol=1e-4, rtol=1e-4)
    back = torch.ops.slimops.mx_linear_backward(g, data, scales, fmt, bs, k)
    torch.testing.assert_close(back, want_x, **tol)


@pytest.mark.parametrize("backend", cpu_backends())
def test_opcheck(backend, backend_reset):
    data, scales = random_weight("mxfp6_e3m2", 10, 70, 16, seed=8)
    x = torch.randn(3, 70, requires_grad=True)
    bias = torch.randn(10, requires_grad=True)
    with slimops.use_backend(backend):
        torch.library.opcheck(torch.ops.slimops.mx_linear.default, (x, data, scales, "mxfp6_e3m2", 16, bias))
        torch.library.opcheck(torch.ops.slimops.mx_linear.default, (x.detach().bfloat16(), data, scales,
                                                                    "mxfp6_e3m2", 16, None))
        torch.library.opcheck(torch.ops.slimops.mx_linear_backward.default,
                              (torch.randn(3, 10), data, scales, "mxfp6_e3m2", 16, 70))


def test_compile_fullgraph(backend_reset):
    data, scales = random_weight("mxint4", 12, 64, 32, seed=9)
    bias = torch.randn(12)

    def f(x):
        return torch.relu(torch.ops.slimops.mx_linear(x, data, scales, "mxint4", 32, bias)) * 2

    x = torch.randn(5, 64)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), f(x))


def test_kernel_by_rows():
    """Which AVX-512 kernel each M takes (the SHAPES above rely on it): small-M up to 4 rows, then with bf16 x the
    dot-product panels up to 64 and the panel GEMM above; fp32 x goes from the small-M kernel to the GEMM."""
    info = slimops.info()
    if not info["native_cpu_built"] or info["cpu_features"].get("isa") != "avx512":
        pytest.skip("the AVX-512 kernels are not the active ones here")
    path = slimops._C.mx_linear_path
    if path(1, 1, 256, 64, 5, 32) != "gemv_bf16":
        pytest.skip("this CPU has no AVX512_BF16: every bf16 call takes the fp32 lanes")
    assert [path(1, m, 256, 64, 5, 32) for m in (1, 4, 5, 64, 65)] == [
        "gemv_bf16", "gemv_bf16", "dot_bf16", "dot_bf16", "gemm_bf16"]
    assert [path(0, m, 256, 64, 5, 32) for m in (4, 5, 65)] == ["gemv_f32", "gemm_f32", "gemm_f32"]
