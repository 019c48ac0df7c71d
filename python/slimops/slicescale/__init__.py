"""Slice-and-Scale: convert packed MX tensors to a lower MX format, without re-quantizing.

>>> import torch, slimops
>>> a = slimops.mx.quantize(torch.randn(4, 64), "mxint8")      # the anchor
>>> b = a.convert("mxint4")                                      # packed -> packed
>>> b.fmt, b.data.shape
('mxint4', torch.Size([4, 32]))

MXINT8 -> MXINT6/4/2 keeps each block's E8M0 scale and rounds every element
half-to-even onto the coarser grid; MXFP8 (E4M3, E5M2) -> MXFP6 / MXFP4 shifts
the shared exponent by ``emax_src - emax_dst`` (clamped to E8M0) and re-encodes
each element from its code. See ``slimops/slicescale/reference.py`` for the
exact rules (NaN blocks, E8M0 edges, truncating mode).
"""

from __future__ import annotations

from ..mx import MXTensor, get_format
from . import dispatch, schemas  # noqa: F401  (the op, its kernels)
from .reference import ROUNDINGS, check_pair, delta_of

__all__ = ["ROUNDINGS", "convert", "delta_of", "supported_targets"]


def convert(t: MXTensor, dst_fmt: str, *, rounding: str = "nearest") -> MXTensor:
    """Convert an :class:`~slimops.mx.MXTensor` to ``dst_fmt`` (same block size and axis).

    ``rounding``: ``"nearest"`` (round half to even, the default) or ``"truncate"``
    (toward zero, for comparison).
    """
    if not isinstance(t, MXTensor):
        raise TypeError(f"t must be an MXTensor, got {type(t).__name__}")
    return t.convert(dst_fmt, rounding=rounding)


def supported_targets(src_fmt: str) -> list[str]:
    """Formats ``src_fmt`` converts to (itself included)."""
    from ..mx.formats import FORMATS

    src = get_format(src_fmt)
    out = []
    for f in FORMATS.values():
        try:
            check_pair(src, f)
        except ValueError:
            continue
        out.append(f.name)
    return out
