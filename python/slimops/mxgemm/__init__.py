"""Fused MX matmul: ``y = x @ W.T + bias`` with ``W`` an MX weight, never dequantized whole.

The family's folder: ``schemas.py`` (op schemas, checks, fakes, autograd), ``reference.py``
(pure PyTorch, the oracle and the default kernel), ``dispatch.py`` (kernel registration and
choice), one module per backend (``cpu.py``, ``triton.py``) and ``bench.py`` (the benchmark suite).
The C++ CPU kernels are in ``csrc/mxgemm/``.

>>> import torch, slimops
>>> w = slimops.mx.quantize(torch.randn(8, 64), "mxint4")          # [out, in], blocks along in
>>> slimops.mxgemm.linear(torch.randn(3, 64), w).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import torch

from . import schemas  # noqa: F401  (op schemas first)
from . import dispatch  # noqa: F401  (the kernels: reference, C++, Triton)

__all__ = ["linear"]


def linear(x: torch.Tensor, w, bias: "torch.Tensor | None" = None) -> torch.Tensor:
    """``x @ w.T + bias`` for an :class:`~slimops.mx.MXTensor` ``w`` [out, in] blocked along ``in``
    (``torch.ops.slimops.mx_linear``; differentiable in ``x`` and ``bias``)."""
    from ..mx import MXTensor

    if not isinstance(w, MXTensor):
        raise TypeError(f"w must be an MXTensor, got {type(w).__name__}")
    if len(w.shape) != 2 or w.axis != 1:
        raise ValueError(f"w must be 2-D [out_features, in_features] blocked along axis 1, got shape "
                         f"{list(w.shape)} blocked along axis {w.axis}")
    if isinstance(x, torch.Tensor) and x.dim() >= 1 and x.shape[-1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} features in its last dimension, w has {w.shape[1]} (in_features)")
    return torch.ops.slimops.mx_linear(x, w.data, w.scales, w.fmt, w.block_size, bias)
