"""Every MX kernel against the reference: bit for bit, every format, block size, axis, dtype."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

import slimops
from slimops.mx.formats import BLOCK_SIZES, FORMATS

from slimops.testing import assert_bits_equal, cpu_backends, gpu_backends, skip_if_default_isa

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def make_input(shape, dtype, seed=0):
    """Values over many decades plus edge values: ±0, subnormals, format max and above, Inf, NaN, zero blocks."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g) * 4)
    flat = x.view(-1)
    n = flat.numel()
    if n >= 200:
        flat[0:32] = 0.0  # an all-zero block (when the axis is the last one)
        flat[40] = -0.0
        flat[41] = 448.0
        flat[42] = 449.0
        flat[43] = 57344.0 * 2
        flat[44] = 1e-40  # fp32 subnormal
        flat[45] = -3e-39
        flat[100] = float("inf")
        flat[150] = float("nan")
        flat[160] = float("-inf")
    return x.to(dtype)


def run(backend, fn, *args, **kw):
    with slimops.use_backend(backend):
        return fn(*args, **kw)


def check_against_reference(backend, device, fmt, shape, dtype, block_size=32, axis=-1, **kw):
    x = make_input(shape, dtype).to(device)
    ref = run("reference", slimops.mx.quantize, x, fmt, block_size, axis, **kw)
    got = run(backend, slimops.mx.quantize, x, fmt, block_size, axis, **kw)
    assert_bits_equal(got.scales, ref.scales, "scales")
    assert_bits_equal(got.data, ref.data, "data")
    for out_dtype in DTYPES:
        assert_bits_equal(run(backend, got.dequantize, out_dtype), run("reference", ref.dequantize, out_dtype),
                          f"dequantize to {out_dtype}")
    assert_bits_equal(run(backend, slimops.mx.fake_quantize, x, fmt, block_size, axis, **kw),
                      run("reference", slimops.mx.fake_quantize, x, fmt, block_size, axis, **kw), "fake_quantize")


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cpu_matches_reference(backend, fmt, dtype):
    check_against_reference(backend, "cpu", fmt, (5, 123), dtype)
    check_against_reference(backend, "cpu", fmt, (3, 4097), dtype, block_size=64)
    check_against_reference(backend, "cpu", fmt, (1, 1), dtype, block_size=16)


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("block_size", BLOCK_SIZES)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("scale_mode", ["floor", "rceil"])
@pytest.mark.parametrize("stochastic", [False, True])
def test_cpu_axes_modes(backend, block_size, axis, scale_mode, stochastic):
    for fmt in ("mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxint8", "mxint2"):
        check_against_reference(backend, "cpu", fmt, (37, 9, 70), torch.float32, block_size, axis,
                                scale_mode=scale_mode, stochastic=stochastic, seed=1234)


@pytest.mark.parametrize("backend", [p for p in cpu_backends() if p.values[0] == "native"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_cpu_blocks_of_16_in_pairs(backend, dtype):
    """The AVX2 kernel takes blocks of 16 two at a time (one scale per 128-bit half): odd runs of full blocks
    (the last one alone), partial tails, and pairs where one block's scale is too small for its exact steps
    (amax near 2^-126, the generic path) beside an ordinary one."""
    for fmt in FORMATS:
        for shape in ((3, 16 * 7), (4, 16 * 5 + 3), (1, 16), (5, 16 * 9)):
            check_against_reference(backend, "cpu", fmt, shape, dtype, block_size=16)
    x = make_input((6, 16 * 8), torch.float32, seed=3)
    x[0, 16:32] *= 2.0 ** -130  # the second block of a pair tiny
    x[1, 0:16] *= 2.0 ** -126   # the first
    x[2, 32:64] = torch.randn(32) * 2.0 ** -120
    x[3, 48:64] = 2.0 ** -149   # the smallest fp32 subnormal
    x = x.to(dtype)
    for fmt in FORMATS:
        for mode in ("floor", "rceil"):
            ref = run("reference", slimops.mx.quantize, x, fmt, 16, scale_mode=mode)
            got = run(backend, slimops.mx.quantize, x, fmt, 16, scale_mode=mode)
            assert_bits_equal(got.scales, ref.scales, f"{fmt} {mode}: scales")
            assert_bits_equal(got.data, ref.data, f"{fmt} {mode}: data")


def check_writes_stop_at_the_buffer_end(backend, dtype=torch.float32):
    """quantize(out=) into the front of a larger buffer, for every format and block size, one run of blocks or
    one per row: the data equal the plain call's, and the bytes after the buffer keep their value (the AVX2
    6-bit pack writes 4 bytes past its 24 where a step of the same run writes after it, never at a run's end)."""
    for fmt in FORMATS:
        for bs in BLOCK_SIZES:
            for shape in ((1, 8 * bs), (3, 5 * bs), (2, 4 * bs + 7), (1, 3 * bs)):
                x = make_input(shape, dtype, seed=shape[1])
                want = run(backend, slimops.mx.quantize, x, fmt, bs)
                n = want.data.numel()
                big = torch.full((n + 64,), 0xA5, dtype=torch.uint8)
                out = (big[:n].view(want.data.shape), torch.empty_like(want.scales))
                got = run(backend, slimops.mx.quantize, x, fmt, bs, out=out)
                what = f"{fmt} block {bs} {tuple(shape)}"
                assert got.data.data_ptr() == big.data_ptr(), what + ": out= was not written in place"
                assert_bits_equal(out[0], want.data, what + ": data")
                assert bool((big[n:] == 0xA5).all()), what + f": bytes written past the buffer: {big[n:n + 8].tolist()}"


@pytest.mark.parametrize("backend", cpu_backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_cpu_writes_stop_at_the_buffer_end(backend, dtype):
    check_writes_stop_at_the_buffer_end(backend, dtype)


@pytest.mark.parametrize("backend", cpu_backends())
def test_cpu_non_contiguous(backend):
    x = make_input((64, 96), torch.float32)[::2, 5:90].t()  # a strided view
    assert not x.is_contiguous()
    ref = run("reference", slimops.mx.quantize, x, "mxfp8")
    got = run(backend, slimops.mx.quantize, x, "mxfp8")
    assert_bits_equal(got.data, ref.data, "data")
    assert_bits_equal(got.scales, ref.scales, "scales")


@pytest.mark.parametrize("backend", gpu_backends())
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_matches_reference(backend, fmt, dtype):
    check_against_reference(backend, "cuda", fmt, (5, 123), dtype)
    check_against_reference(backend, "cuda", fmt, (3, 4097), dtype, block_size=64)
    for axis in (0, 1):
        check_against_reference(backend, "cuda", fmt, (37, 9, 70), dtype, 16, axis, scale_mode="rceil",
                                stochastic=True, seed=5)


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_cpu_lower_isa_paths(isa):
    """The C++ module is built for several instruction sets; each must give the reference's bits."""
    if slimops.info()["cpu_features"].get("isa_detected") in (None, "baseline") and isa != "baseline":
        pytest.skip(f"this CPU has no {isa}")
    if not slimops.info()["native_cpu_built"]:
        pytest.skip("slimops._C not built")
    skip_if_default_isa(isa)
    code = (
        "import torch, slimops, sys\n"
        "from tests.mx.test_mx_backends import check_against_reference, check_writes_stop_at_the_buffer_end\n"
        f"assert slimops.info()['cpu_features']['isa'] == {isa!r}\n"
        "for fmt in slimops.mx.FORMATS:\n"
        "    for dt in (torch.float32, torch.bfloat16, torch.float16):\n"
        "        check_against_reference('native', 'cpu', fmt, (5, 203), dt)\n"
        "    check_against_reference('native', 'cpu', fmt, (7, 96), torch.float32, 16, 0, scale_mode='rceil',\n"
        "                            stochastic=True, seed=3)\n"
        "for dt in (torch.float32, torch.bfloat16):\n"
        "    check_writes_stop_at_the_buffer_end('native', dt)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, SLIMOPS_CPU_ISA=isa)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=pathlib.Path(__file__).resolve().parents[2])
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
