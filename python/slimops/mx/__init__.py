"""OCP Microscaling (MX) formats: quantize, dequantize, fake-quantize, packed storage.

The family's folder: ``formats.py`` (the formats), ``schemas.py`` (op schemas,
checks, fakes, autograd), ``reference.py`` (pure PyTorch, the oracle and the
default kernel), ``dispatch.py`` (kernel registration and choice), one module
per backend (``cpu.py``, ``cuda.py``, ``triton.py``), ``swizzle.py`` (cuBLAS
scale layout) and ``bench.py`` (the benchmark suite).

>>> import torch, slimops
>>> t = slimops.mx.quantize(torch.randn(4, 64), "mxfp8")
>>> t.data.shape, t.scales.shape, t.dequantize(torch.float32).shape
(torch.Size([4, 64]), torch.Size([4, 2]), torch.Size([4, 64]))
"""

from __future__ import annotations

import dataclasses

import torch

from . import schemas  # noqa: F401  (op schemas first)
from . import dispatch  # noqa: F401  (the kernels: reference, C++, CUDA C++, Triton)
from .formats import ALIASES, BLOCK_SIZES, FORMATS, MXFormat, get_format
from .swizzle import swizzle_scales

__all__ = ["ALIASES", "BLOCK_SIZES", "FORMATS", "MXFormat", "MXTensor", "dequantize", "fake_quantize",
           "get_format", "quantize", "swizzle_scales"]


@dataclasses.dataclass
class MXTensor:
    """A tensor in an MX format: packed element bytes plus one E8M0 scale byte per block.

    ``data`` has the logical ``shape`` with the ``axis`` length replaced by the
    packed byte count; ``scales`` (uint8) has it replaced by the block count.
    """

    data: torch.Tensor
    scales: torch.Tensor
    fmt: str
    block_size: int
    axis: int
    shape: torch.Size

    @property
    def format(self) -> MXFormat:
        return get_format(self.fmt)

    @property
    def scales_e8m0(self) -> torch.Tensor:
        """The scales viewed as ``torch.float8_e8m0fnu``."""
        return self.scales.view(torch.float8_e8m0fnu)

    @property
    def nbytes(self) -> int:
        """Bytes of storage: packed elements plus scales."""
        return self.data.numel() + self.scales.numel()

    @property
    def device(self) -> torch.device:
        return self.data.device

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(self, dtype)

    def swizzled_scales(self) -> torch.Tensor:
        """Scales in the 128x4 blocked layout of cuBLAS block-scaled GEMM (see :func:`swizzle_scales`)."""
        return swizzle_scales(self.scales)

    def to(self, device) -> "MXTensor":
        return dataclasses.replace(self, data=self.data.to(device), scales=self.scales.to(device))


def quantize(x: torch.Tensor, fmt: str, block_size: int = 32, axis: int = -1, *, scale_mode: str = "floor",
             stochastic: bool = False, seed: int = 0) -> MXTensor:
    """Quantize ``x`` (fp32, bf16 or fp16) to ``fmt`` in blocks of ``block_size`` along ``axis``.

    ``scale_mode`` is ``"floor"`` (the OCP spec's) or ``"rceil"`` (NVIDIA's);
    ``stochastic=True`` rounds stochastically, reproducibly for a given ``seed``.
    """
    f = get_format(fmt)
    data, scales = torch.ops.slimops.mx_quantize(x, f.name, block_size, axis, scale_mode, stochastic, seed)
    ax = axis % x.dim() if x.dim() else axis
    return MXTensor(data, scales, f.name, block_size, ax, x.shape)


def dequantize(t: MXTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Decode an :class:`MXTensor` to ``dtype`` (fp32, bf16 or fp16)."""
    if not isinstance(t, MXTensor):
        raise TypeError(f"t must be an MXTensor, got {type(t).__name__}")
    return torch.ops.slimops.mx_dequantize(t.data, t.scales, t.fmt, t.block_size, t.axis, t.shape[t.axis], dtype)


def fake_quantize(x: torch.Tensor, fmt: str, block_size: int = 32, axis: int = -1, *, scale_mode: str = "floor",
                  stochastic: bool = False, seed: int = 0) -> torch.Tensor:
    """Quantize-dequantize in one pass, same dtype as ``x``; gradient straight through (for QAT)."""
    f = get_format(fmt)
    return torch.ops.slimops.mx_fake_quantize(x, f.name, block_size, axis, scale_mode, stochastic, seed)
