"""The per-row integer codec (AdaQP, Wan et al. 2023): a row of floats as ``min``, ``scale`` and ``b``-bit codes.

``torch.ops.slimops.rowq_quantize(x, bits, stochastic, seed) -> (data, params)``
and ``rowq_dequantize(data, params, bits, length, dtype)`` (formulas in
:mod:`.schemas`): the reference (:mod:`.reference`), C++ CPU, CUDA C++ and
Triton kernels, bit for bit the same. The distributed family's integer halo
codecs (``--codec int8|int4|int2``) are built on them.
"""

from __future__ import annotations

import torch

from . import schemas  # noqa: F401  (op schemas first)
from . import dispatch  # noqa: F401  (their kernels: reference, C++ CPU, CUDA C++, Triton)


def quantize(x: torch.Tensor, bits: int, stochastic: bool = True, seed: int = 0):
    """``(data, params)``: each row's ``b``-bit codes packed ``8 / b`` per byte, and its fp32 ``(min, scale)``."""
    return torch.ops.slimops.rowq_quantize(x, bits, stochastic, seed)


def dequantize(data: torch.Tensor, params: torch.Tensor, bits: int, length: int, dtype=None) -> torch.Tensor:
    """Inverse of :func:`quantize`: ``min + code * scale`` per row, ``length`` elements, in ``dtype`` (fp32)."""
    return torch.ops.slimops.rowq_dequantize(data, params, bits, length, dtype or torch.float32)


__all__ = ["dequantize", "quantize"]
