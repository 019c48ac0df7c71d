"""The mxgemm family's grid for ``slimops check`` (:mod:`slimops.check`): ``mx_linear`` and
``mx_linear_backward`` against the fp64 product of the packed weight's exact values.

Every MX format, x in fp32, bf16 and fp16, block sizes 16, 32 and 64 (one per shape, in turn),
shapes (M, K, N) with K a multiple of the block and not, M = 1 (the decode kernels) and M = 33 (the
GEMM), with and without bias, weights of log-normal row scales. A dequantized MX value is exact in
fp32, so a kernel differs from the exact result only by its fp32 summation order and the final
rounding to x's dtype. Each output is compared in units of its sum of magnitudes
S = sum_k |x_k W_nk| (+ |bias_n|): the tolerance is 2 K 2^-24 (twice the worst case of any fp32 summation
order) plus, for bf16 and fp16 outputs, one rounding (2^-8, 2^-11). The tests (``tests/mxgemm``)
hold the kernels to the tighter bound of the op's docstring, twice the error of ``F.linear``.
"""

from __future__ import annotations

import torch

from .._backend import use_backend
from ..check import Case
from ..mx import MXTensor, quantize
from ..mx.formats import FORMATS

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
SHAPES = ((1, 64, 8), (1, 417, 33), (3, 100, 7), (33, 96, 70), (33, 417, 19))  # (M, K, N)
BLOCKS = (32, 16, 64)
ROUNDING = {torch.float32: 0.0, torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
LARGE = 2 * 10**4  # M * N outputs: larger cases are left out in Triton's interpreter


def _weight(fmt: str, n: int, k: int, block_size: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k, generator=g) * torch.exp(torch.randn(n, 1, generator=g))
    t = quantize(w, fmt, block_size)
    return t.data, t.scales


def _exact(data, scales, fmt, block_size, k):
    with use_backend("reference"):
        return MXTensor(data.cpu(), scales.cpu(), fmt, block_size, 1, (data.shape[0], k)).dequantize(
            torch.float32).double()


def _units(y, a, w, bias):
    """y / S with S = |a| @ |w| (+ |bias|), w the matrix of the product a @ w, both in fp64 on the CPU (an all-zero row: y itself)."""
    s = a.detach().cpu().double().abs() @ w.abs()
    if bias is not None:
        s = s + bias.detach().cpu().double().abs()
    return (y.detach().cpu().double() / torch.where(s > 0, s, torch.ones_like(s))).float()


def _linear_case(fmt, dtype, shape, block_size, with_bias, seed):
    m, k, n = shape

    def make(device):
        g = torch.Generator().manual_seed(seed)
        data, scales = _weight(fmt, n, k, block_size, seed)
        x = torch.randn(m, k, generator=g).to(dtype)
        bias = torch.randn(n, generator=g).to(dtype) if with_bias else None
        return x.to(device), data.to(device), scales.to(device), None if bias is None else bias.to(device)

    def call(x, data, scales, bias):
        y = torch.ops.slimops.mx_linear(x, data, scales, fmt, block_size, bias)
        return _units(y.float(), x, _exact(data, scales, fmt, block_size, k).T, bias)

    def oracle(x, data, scales, bias):
        w = _exact(data, scales, fmt, block_size, k)
        y = x.cpu().double() @ w.T + (0 if bias is None else bias.cpu().double())
        return _units(y, x, w.T, bias)

    tol = (k * 2.0**-23 + ROUNDING[dtype], 0.0)
    label = f"{fmt} bs {block_size} {m}x{k}x{n}{' bias' if with_bias else ''}"
    return Case("mx_linear", make, call, dtype, label, tol=tol, oracle=oracle, large=m * n > LARGE)


def _backward_case(fmt, dtype, shape, block_size, seed):
    m, k, n = shape

    def make(device):
        g = torch.Generator().manual_seed(seed + 1)
        data, scales = _weight(fmt, n, k, block_size, seed)
        return torch.randn(m, n, generator=g).to(dtype).to(device), data.to(device), scales.to(device)

    def call(grad_y, data, scales):
        gx = torch.ops.slimops.mx_linear_backward(grad_y, data, scales, fmt, block_size, k)
        return _units(gx.float(), grad_y, _exact(data, scales, fmt, block_size, k), None)

    def oracle(grad_y, data, scales):
        w = _exact(data, scales, fmt, block_size, k)
        return _units(grad_y.cpu().double() @ w, grad_y, w, None)

    tol = (n * 2.0**-23 + ROUNDING[dtype], 0.0)
    return Case("mx_linear_backward", make, call, dtype, f"{fmt} bs {block_size} {m}x{k}x{n}", tol=tol,
                oracle=oracle, large=m * k > LARGE)


def cases() -> list:
    out = []
    for dtype in DTYPES:
        for i, fmt in enumerate(FORMATS):
            for j, shape in enumerate(SHAPES):
                bs = BLOCKS[(i + j) % len(BLOCKS)]
                out.append(_linear_case(fmt, dtype, shape, bs, j % 2 == 1, 100 * i + j))
            out.append(_backward_case(fmt, dtype, SHAPES[i % len(SHAPES)], BLOCKS[i % len(BLOCKS)], 7 * i))
            out.append(_backward_case(fmt, dtype, (5, 417, 40), BLOCKS[(i + 1) % len(BLOCKS)], 7 * i + 3))
    return out
