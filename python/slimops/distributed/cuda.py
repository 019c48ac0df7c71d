"""Kernels of the per-row integer codec for CUDA tensors: Triton (``slimops.distributed.triton``).

The CUDA C++ kernels (``kernels/distributed/rowq_kernels.cu``) compile with nvcc but are not linked into
``slimops._C_cuda`` yet, so ``backend="native"`` on CUDA falls back to the reference (not a silent
substitute for Triton: ``auto`` and ``triton`` run Triton).
"""

from __future__ import annotations

import torch

from .._backend import resolve, triton_available
from . import reference


def _impl():
    choice = resolve("cuda")
    if choice == "triton" and triton_available():
        from . import triton as triton_impl

        return triton_impl
    return reference


def quantize(x, bits, stochastic, seed):
    return _impl().quantize(x, bits, stochastic, seed)


def dequantize(data, params, bits, length, dtype):
    return _impl().dequantize(data, params, bits, length, dtype)


torch.library.register_kernel("slimops::rowq_quantize", "cuda", quantize)
torch.library.register_kernel("slimops::rowq_dequantize", "cuda", dequantize)
