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

import dataclasses
import math

import torch

from ..mx import MXTensor, get_format
from ..mx import out_pair
from . import dispatch, schemas  # noqa: F401  (the op, its kernels)
from .reference import ROUNDINGS, check_pair, delta_of
from .report import ConversionReport

__all__ = ["ROUNDINGS", "ConversionReport", "convert", "delta_of", "supported_targets"]


def convert(t: MXTensor, dst_fmt: str, *, rounding: str = "nearest", out: "tuple | None" = None,
            report: bool = False):
    """Convert an :class:`~slimops.mx.MXTensor` to ``dst_fmt`` (same block size and axis).

    ``rounding``: ``"nearest"`` (round half to even, the default) or ``"truncate"`` (toward zero,
    for comparison). ``out=(data, scales)``: write into the caller's uint8 tensors of the result's
    shapes (the op ``mx_convert_out``; no allocation when the blocked axis is their last and they are
    contiguous). ``report=True``: return ``(MXTensor, ConversionReport)``, the report counted by the
    kernel on the way (:mod:`slimops.slicescale.report`).
    """
    if not isinstance(t, MXTensor):
        raise TypeError(f"t must be an MXTensor, got {type(t).__name__}")
    f = get_format(dst_fmt)
    length = t.shape[t.axis]
    args = (t.data, t.scales, t.fmt, f.name, t.block_size, t.axis, length, rounding)
    if out is None and not report:
        data, scales = torch.ops.slimops.mx_convert(*args)
        return dataclasses.replace(t, data=data, scales=scales, fmt=f.name)
    if out is None:
        data = t.data.new_empty(schemas.packed_shape(t.data.shape, t.axis, f.packed_bytes(length)))
        scales = t.data.new_empty(t.scales.shape)
    else:
        data, scales = out_pair(out)
    counts = torch.empty(schemas.NUM_COUNTS, dtype=torch.int64, device=t.data.device) if report else None
    torch.ops.slimops.mx_convert_out(*args, data, scales, counts)
    res = dataclasses.replace(t, data=data, scales=scales, fmt=f.name)
    if not report:
        return res
    return res, ConversionReport.from_counts(t.fmt, f.name, math.prod(t.scales.shape), counts)


def supported_targets(src_fmt: str) -> list[str]:
    """Formats ``src_fmt`` converts to (itself included)."""
    from ..mx.formats import FORMATS

    src = get_format(src_fmt)
    out = []
    for fmt in FORMATS.values():
        try:
            check_pair(src, fmt)
        except ValueError:
            continue
        out.append(fmt.name)
    return out
