"""The per-row integer codec's kernels against the reference, bit for bit: C++ CPU, Triton (interpreter), nvcc."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch

import slimops
from slimops._backend import triton_available, triton_interpret
from slimops.rowq import cpu as cpu_impl
from slimops.rowq import reference as ref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = [(37, 16), (5, 7), (13, 70), (1, 1), (0, 5), (4, 0), (300, 129)]


def _check(impl_q, impl_dq, bits, stochastic, shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 5
    d, p = impl_q(x, bits, stochastic, 1234)
    rd, rp = ref.quantize(x, bits, stochastic, 1234)
    assert torch.equal(p, rp) and torch.equal(d, rd), f"bits {bits} stochastic {stochastic} shape {shape}"
    assert torch.equal(impl_dq(d, p, bits, shape[1], torch.float32), ref.dequantize(d, p, bits, shape[1],
                                                                                     torch.float32))


@pytest.mark.skipif(not cpu_impl.native_available(), reason="slimops._C without the rowq kernels")
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("stochastic", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_cpu_kernel_is_bit_exact(bits, stochastic, shape, backend_reset):
    with slimops.use_backend("native"):
        _check(torch.ops.slimops.rowq_quantize, torch.ops.slimops.rowq_dequantize, bits, stochastic, shape)


def test_cpu_kernel_bf16_input_and_output(backend_reset):
    x = torch.randn(9, 40).to(torch.bfloat16)
    d, p = torch.ops.slimops.rowq_quantize(x, 4, True, 5)
    rd, rp = ref.quantize(x, 4, True, 5)
    assert torch.equal(d, rd) and torch.equal(p, rp)
    y = torch.ops.slimops.rowq_dequantize(d, p, 4, 40, torch.bfloat16)
    assert y.dtype == torch.bfloat16 and torch.equal(y, ref.dequantize(d, p, 4, 40, torch.bfloat16))


@pytest.mark.skipif(not (triton_available() and triton_interpret()), reason="needs triton and TRITON_INTERPRET=1")
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("stochastic", [True, False])
@pytest.mark.parametrize("shape", [(5, 16), (3, 7), (4, 70), (0, 5)])
def test_triton_kernel_is_bit_exact_in_the_interpreter(bits, stochastic, shape, backend_reset):
    with slimops.use_backend("triton"):
        _check(torch.ops.slimops.rowq_quantize, torch.ops.slimops.rowq_dequantize, bits, stochastic, shape)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["native", "triton"])
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_kernels_are_bit_exact(backend, shape, backend_reset):
    from slimops.rowq import cuda as cuda_impl

    if backend == "native" and not cuda_impl.native_available():
        pytest.skip("slimops._C_cuda without the rowq kernels (built without nvcc)")
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 5
    for bits in (2, 4, 8):
        for stochastic in (True, False):
            rd, rp = ref.quantize(x, bits, stochastic, 1234)
            with slimops.use_backend(backend):
                d, p = torch.ops.slimops.rowq_quantize(x.cuda(), bits, stochastic, 1234)
                out = torch.ops.slimops.rowq_dequantize(d, p, bits, shape[1], torch.float32)
            where = f"{backend} bits {bits} stochastic {stochastic} shape {shape}"
            assert torch.equal(p.cpu(), rp) and torch.equal(d.cpu(), rd), where
            assert torch.equal(out.cpu(), ref.dequantize(rd, rp, bits, shape[1], torch.float32)), where


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
def test_cuda_kernels_compile(tmp_path):
    src = os.path.join(ROOT, "kernels", "rowq", "rowq_kernels.cu")
    p = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90a", "--fmad=false", "-c", src, "-I", ROOT, "-o",
                        str(tmp_path / "rowq.o")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
