"""The mxgemm family's C++ CPU implementation (``slimops._C``, built from ``csrc/mxgemm/``) on the canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx import cpu as mx_cpu
from ..mx.formats import DTYPE_CODES, MXFormat

TILE_BYTES = 2 << 20  # fp32 bytes of one decoded tile of W in linear_backward_2d


def _C():
    return native_module("_C")


def linear_2d(x2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat, block_size: int,
              bias: "torch.Tensor | None", out: "torch.Tensor | None" = None) -> torch.Tensor:
    m, k = x2d.shape
    n = w_data.shape[0]
    dt = x2d.dtype
    y = torch.empty(m, n, dtype=dt) if out is None else out
    if bias is None:
        b, bdt = 0, 0
    else:
        b, bdt = bias.data_ptr(), DTYPE_CODES[bias.dtype]
    _C().mx_linear(x2d.data_ptr(), DTYPE_CODES[dt], m, k, w_data.data_ptr(), w_scales.data_ptr(), n, fmt.format_id,
                   block_size, b, bdt, y.data_ptr(), torch.get_num_threads())
    return y


def linear_backward_2d(g2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat,
                       block_size: int, in_features: int) -> torch.Tensor:
    """``grad_y @ W`` one tile of W at a time: ``tile`` rows of W decoded to fp32 by the MX family's C++
    dequantize into one reused buffer (about TILE_BYTES), multiplied by torch's fp32 GEMM into an fp32
    accumulator. W is never whole in memory."""
    m, n = g2d.shape
    k = in_features
    tile = max(1, min(n, TILE_BYTES // (4 * max(k, 1))))
    g = g2d.float()
    acc = torch.zeros(m, k, dtype=torch.float32)
    buf = torch.empty(tile, k, dtype=torch.float32)
    for n0 in range(0, n, tile):
        n1 = min(n, n0 + tile)
        w = buf[: n1 - n0]
        mx_cpu.dequantize_2d(w_data[n0:n1], w_scales[n0:n1], fmt, block_size, k, torch.float32, out=w)
        acc.addmm_(g[:, n0:n1], w)
    return acc.to(g2d.dtype)
