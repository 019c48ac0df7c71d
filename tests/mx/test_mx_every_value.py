"""Every bf16 and fp16 value, and fp32 at every exponent, through every MX format: bit for bit.

The native CPU kernels take 16-bit inputs and outputs in 16-bit lanes where the CPU has AVX-512
(csrc/mx/mx_cpu_avx512.h; every decode, to fp32 too), with their own integer formulas for the scale, the rounding, the element
subnormals and the exponent rebiasing (bf16 quantize of whole tiles of 16 blocks: one fused multiply-add per
16 elements, csrc/mx/mx_cpu_avx512_runs.h), and send the blocks those formulas cannot take (NaN
scales, extreme scales, fp16 subnormals in small blocks) back to the generic code. These tests
put each of the 65536 bit patterns in blocks where it is near the block's amax, far below it (the
element's subnormal range and the values that round to zero), in zero and NaN blocks, for block
sizes 16, 32 and 64 and both scale modes, and decode every code at every scale byte. On a CPU
without AVX-512 they check the AVX2 or baseline kernels the same way.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

import slimops
from slimops.mx import reference as ref_impl
from slimops.mx.formats import FORMATS, get_format
from slimops.testing import assert_bits_equal, cpu_backends, skip_if_default_isa

HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}
OUTPUTS = (torch.float32, torch.bfloat16, torch.float16)  # dequantize decodes to fp32 in the same lanes
NATIVE = [p for p in cpu_backends() if p.values[0] == "native"]


def all_values(dtype: torch.dtype) -> torch.Tensor:
    """The 65536 bit patterns of a 16-bit float dtype."""
    return torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(dtype)


def ladder_blocks(dtype: torch.dtype, shifts=(0, 1, 3, 6, 9, 12, 16, 24), seed: int = 0) -> torch.Tensor:
    """(n, 32) blocks: 31 neighbouring finite values (by magnitude, signs mixed) and an amax setter
    2^s times their largest magnitude (clamped to the dtype's max), for each shift s."""
    v = all_values(dtype)
    v = v[torch.isfinite(v)]
    v = v[torch.argsort(v.float().abs(), stable=True)]
    n = v.numel() // 31 * 31
    body = v[:n].view(-1, 31)
    g = torch.Generator().manual_seed(seed)
    blocks = []
    for s in shifts:
        top = body.float().abs().amax(dim=1, keepdim=True) * 2.0 ** s
        setter = top.clamp(max=torch.finfo(dtype).max).to(dtype)
        sign = torch.where(torch.rand(setter.shape, generator=g) < 0.5, -1.0, 1.0).to(dtype)
        blk = torch.cat([setter * sign, body], dim=1)
        blocks.append(blk[:, torch.randperm(32, generator=g)])  # the setter anywhere in its block
    out = torch.cat(blocks)
    return out[: out.shape[0] // 16 * 16]  # whole rows of 512


def arrangements(dtype: torch.dtype) -> dict:
    v = all_values(dtype)
    g = torch.Generator().manual_seed(1)
    by_magnitude = v[torch.argsort(v.float().nan_to_num(nan=1e30).abs(), stable=True)]
    return {
        "ladder": ladder_blocks(dtype).reshape(-1, 512),
        "neighbours": by_magnitude.reshape(-1, 512),  # NaN and Inf blocks at the end
        "shuffled": v[torch.randperm(v.numel(), generator=g)].reshape(-1, 512),
    }


def run(backend, fn, *args, **kw):
    with slimops.use_backend(backend):
        return fn(*args, **kw)


def check_arrangements(backend, fmt, dtype_name, arranged: dict, dequantize: bool):
    """quantize (scales, data) and fake_quantize of each arrangement, at block sizes 16, 32 and 64 for
    the ladder and 32 for the others, both scale modes; with ``dequantize`` the FLOOR codes decoded to
    every output dtype."""
    for name, x in arranged.items():
        for block_size in (16, 32, 64) if name == "ladder" else (32,):
            for mode in ("floor", "rceil"):
                what = f"{fmt} {dtype_name} {name} block {block_size} {mode}"
                ref = run("reference", slimops.mx.quantize, x, fmt, block_size, scale_mode=mode)
                got = run(backend, slimops.mx.quantize, x, fmt, block_size, scale_mode=mode)
                assert_bits_equal(got.scales, ref.scales, f"{what}: scales")
                assert_bits_equal(got.data, ref.data, f"{what}: data")
                assert_bits_equal(run(backend, slimops.mx.fake_quantize, x, fmt, block_size, scale_mode=mode),
                                  run("reference", slimops.mx.fake_quantize, x, fmt, block_size, scale_mode=mode),
                                  f"{what}: fake_quantize")
                if dequantize and mode == "floor":
                    for out in OUTPUTS:
                        assert_bits_equal(run(backend, ref.dequantize, out), run("reference", ref.dequantize, out),
                                          f"{what}: dequantize to {out}")


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("dtype", list(HALF))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_16_bit_value(backend, dtype, fmt):
    check_arrangements(backend, fmt, dtype, arrangements(HALF[dtype]), dequantize=True)


def fp32_arrangements() -> dict:
    """fp32 values over every exponent: each bf16 pattern with random low 16 mantissa bits (the
    rounding and sticky bits of every format), arranged as the 16-bit inputs are."""
    g = torch.Generator().manual_seed(3)
    out = {}
    for name, x in arrangements(torch.bfloat16).items():
        bits = x.view(torch.int16).to(torch.int32) << 16
        low = torch.randint(0, 1 << 16, bits.shape, generator=g, dtype=torch.int32)
        finite = (bits & 0x7F800000) != 0x7F800000  # NaN and Inf stay as they are
        out[name] = torch.where(finite, bits | low, bits).view(torch.float32)
    return out


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_fp32_over_every_exponent(backend, fmt):
    """fp32 input (the AVX-512 kernels encode it in 32-bit lanes): quantize and fake-quantize."""
    check_arrangements(backend, fmt, "float32", fp32_arrangements(), dequantize=False)


@pytest.mark.parametrize("backend", NATIVE)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_code_at_every_scale(backend, fmt):
    """Dequantize of every element code (NaN and Inf codes included) with every scale byte, to fp32,
    bf16 and fp16: the exact range, saturation, subnormal outputs and NaN scales."""
    f = get_format(fmt)
    ncodes = 1 << f.bits
    codes = torch.arange(ncodes).repeat(256 * 64 // ncodes + 1)[: 256 * 64].view(256, 64)
    codes = codes[:, torch.randperm(64, generator=torch.Generator().manual_seed(2))]
    for block_size in (16, 32, 64):
        scales = torch.arange(256, dtype=torch.uint8)[:, None].expand(256, 64 // block_size)
        t = slimops.mx.MXTensor(ref_impl.pack(codes, f.bits), scales.contiguous(), f.name, block_size, 1, codes.shape)
        for out in OUTPUTS:
            assert_bits_equal(run(backend, t.dequantize, out), run("reference", t.dequantize, out),
                              f"{fmt} block {block_size} to {out}")


def test_requested_isa_is_active():
    """Under SLIMOPS_CPU_ISA (test_every_value_on_lower_isa's subprocess) the kernels run that ISA."""
    isa = os.environ.get("SLIMOPS_CPU_ISA")
    if not isa:
        pytest.skip("SLIMOPS_CPU_ISA not set: the kernels run the best ISA of this CPU")
    assert slimops.info()["cpu_features"]["isa"] == isa


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_every_value_on_lower_isa(isa):
    """The same checks on the AVX2 build's kernels (a laptop's) and the SSE2 baseline's, in a subprocess
    with SLIMOPS_CPU_ISA set (the ISA is picked once per process)."""
    info = slimops.info()
    if not info["native_cpu_built"]:
        pytest.skip("slimops._C not built")
    if isa != "baseline" and info["cpu_features"].get("isa_detected") in (None, "baseline"):
        pytest.skip(f"this CPU has no {isa}")
    if os.environ.get("SLIMOPS_CPU_ISA"):
        pytest.skip("already running under SLIMOPS_CPU_ISA")
    skip_if_default_isa(isa)
    root = pathlib.Path(__file__).resolve().parents[2]
    env = dict(os.environ, SLIMOPS_CPU_ISA=isa)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__,
                        "-k", "not lower_isa"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
