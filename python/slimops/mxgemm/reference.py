"""Pure-PyTorch reference of ``mx_linear`` and ``mx_linear_backward``: the oracle of every test.

``y = x @ dequantize(W).T + bias``, on the canonical layout (``x2d`` [M, K] contiguous): the MX
weight is dequantized to fp32 by the MX family's reference (every MX value is exact in fp32; a
value past fp32's range saturates at its largest finite value, a NaN-scale block is NaN), ``x``
and ``bias`` are widened to fp32 (exact), the product is accumulated in fp32 and rounded once to
``x``'s dtype. This is today's ``MXLinear`` path (dequantize, then ``F.linear``) done in fp32;
the kernels compute the same products and differ only in the order of the sums.

``grad_x = grad_y @ dequantize(W)`` the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..mx import reference as mx_reference
from ..mx.formats import MXFormat


def dequantize_f32(w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat, block_size: int,
                   in_features: int) -> torch.Tensor:
    """The whole weight [N, K] in fp32 (the oracle may hold it; the kernels never do)."""
    return mx_reference.dequantize_2d(w_data, w_scales.view(torch.uint8), fmt, block_size, in_features,
                                      torch.float32)


def linear_2d(x2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat, block_size: int,
              bias: "torch.Tensor | None") -> torch.Tensor:
    w = dequantize_f32(w_data, w_scales, fmt, block_size, x2d.shape[1])
    b = None if bias is None else bias.float()
    return F.linear(x2d.float(), w, b).to(x2d.dtype)


def linear_backward_2d(g2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat,
                       block_size: int, in_features: int) -> torch.Tensor:
    w = dequantize_f32(w_data, w_scales, fmt, block_size, in_features)
    return (g2d.float() @ w).to(g2d.dtype)
