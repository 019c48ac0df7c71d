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

    def __post_init__(self):
        """Check every field against the others now, not at first use (clear errors naming the field;
        each message is formatted only when its check fails, as in schemas.py)."""
        f = get_format(self.fmt)  # ValueError naming the unknown format
        self.fmt = f.name
        if not isinstance(self.shape, (tuple, list, torch.Size)):
            raise TypeError(f"shape must be a tuple or torch.Size, got {type(self.shape).__name__}")
        self.shape = torch.Size(self.shape)
        if not all(isinstance(d, int) and d >= 0 for d in self.shape):
            raise ValueError(f"shape must hold non-negative ints, got {tuple(self.shape)}")
        if not (isinstance(self.data, torch.Tensor) and isinstance(self.scales, torch.Tensor)):
            raise TypeError("data and scales must be torch.Tensors")
        self.axis = schemas.normalize_axis(self.axis, len(self.shape))
        length = self.shape[self.axis]
        schemas.check_dequantize_args(self.data, self.scales, f.name, self.block_size, self.axis, length,
                                      torch.float32)
        want_data = schemas.packed_shape(self.shape, self.axis, f.packed_bytes(length))
        if list(self.data.shape) != want_data:
            raise ValueError(f"data has shape {list(self.data.shape)}, expected {want_data} for shape "
                             f"{list(self.shape)} in {f.name} along axis {self.axis}")

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

    def dequantize(self, dtype: "torch.dtype | None" = None, *, out: "torch.Tensor | None" = None) -> torch.Tensor:
        return dequantize(self, dtype, out=out)

    def swizzled_scales(self) -> torch.Tensor:
        """Scales in the 128x4 blocked layout of cuBLAS block-scaled GEMM (see :func:`swizzle_scales`)."""
        return swizzle_scales(self.scales)

    def to(self, device) -> "MXTensor":
        return dataclasses.replace(self, data=self.data.to(device), scales=self.scales.to(device))

    def convert(self, dst_fmt: str, *, rounding: str = "nearest", out: "tuple | None" = None, report: bool = False):
        """Slice-and-Scale to a lower MX format, packed to packed (same block size and axis): the op
        ``slimops::mx_convert``, defined with this method's body by the slicescale family
        (:func:`slimops.slicescale.convert`, which see for ``out=`` and ``report=``)."""
        from ..slicescale import convert  # the family that defines the op (imported with slimops)

        return convert(self, dst_fmt, rounding=rounding, out=out, report=report)


def out_pair(out, what: str = "out") -> tuple:
    """``out=`` of the MX API: a (data, scales) pair of tensors."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise TypeError(f"{what} must be a (data, scales) pair of tensors, got {type(out).__name__}")
    return tuple(out)


def quantize(x: torch.Tensor, fmt: str, block_size: int = 32, axis: int = -1, *, scale_mode: str = "floor",
             stochastic: bool = False, seed: int = 0, out: "tuple | None" = None) -> MXTensor:
    """Quantize ``x`` (fp32, bf16 or fp16) to ``fmt`` in blocks of ``block_size`` along ``axis``.

    ``scale_mode`` is ``"floor"`` (the OCP spec's) or ``"rceil"`` (NVIDIA's);
    ``stochastic=True`` rounds stochastically, reproducibly for a given ``seed`` (any
    int64; all 64 bits count, seeds in [0, 2**32) as they always did).
    ``out=(data, scales)``: write into the caller's uint8 tensors of the result's shapes (the op
    ``mx_quantize_out``; no allocation when the blocked axis is their last and they are contiguous)
    and return an MXTensor over them.
    """
    f = get_format(fmt)
    schemas.check_seed(seed)
    if out is None:
        data, scales = torch.ops.slimops.mx_quantize(x, f.name, block_size, axis, scale_mode, stochastic, seed)
    else:
        data, scales = out_pair(out)
        torch.ops.slimops.mx_quantize_out(x, f.name, block_size, axis, scale_mode, stochastic, seed, data, scales)
    ax = axis % x.dim() if x.dim() else axis
    return MXTensor(data, scales, f.name, block_size, ax, x.shape)


def dequantize(t: MXTensor, dtype: "torch.dtype | None" = None, *, out: "torch.Tensor | None" = None) -> torch.Tensor:
    """Decode an :class:`MXTensor` to ``dtype`` (fp32, bf16 or fp16; default fp32, or ``out``'s).

    ``out=`` (torch's convention): write into the caller's tensor of the logical shape and
    return it, with no allocation; not differentiable.
    """
    if not isinstance(t, MXTensor):
        raise TypeError(f"t must be an MXTensor, got {type(t).__name__}")
    length = t.shape[t.axis]
    if out is None:
        return torch.ops.slimops.mx_dequantize(t.data, t.scales, t.fmt, t.block_size, t.axis, length,
                                               dtype or torch.float32)
    schemas.check(dtype is None or dtype == getattr(out, "dtype", None), TypeError,
                  f"dtype={dtype} and out (dtype {getattr(out, 'dtype', None)}) disagree")
    torch.ops.slimops.mx_dequantize_out(t.data, t.scales, t.fmt, t.block_size, t.axis, length, out)
    return out


def fake_quantize(x: torch.Tensor, fmt: str, block_size: int = 32, axis: int = -1, *, scale_mode: str = "floor",
                  stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None) -> torch.Tensor:
    """Quantize-dequantize in one pass, same dtype as ``x``; gradient straight through (for QAT).

    ``out=`` (torch's convention): write into the caller's tensor of ``x``'s shape and dtype
    and return it, with no allocation; not differentiable (as torch's ``out=`` ops).
    """
    f = get_format(fmt)
    schemas.check_seed(seed)
    if out is None:
        return torch.ops.slimops.mx_fake_quantize(x, f.name, block_size, axis, scale_mode, stochastic, seed)
    schemas.check(not (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad), RuntimeError,
                  "fake_quantize(..., out=...) is not differentiable (as torch's out= ops): call it without out= "
                  "to get the straight-through gradient, or under torch.no_grad()")
    torch.ops.slimops.mx_fake_quantize_out(x, f.name, block_size, axis, scale_mode, stochastic, seed, out)
    return out
