"""The conversion report of Slice-and-Scale: per tensor, how many blocks kept every value, and what
happened to the others. Counted by the kernels on the way (``mx_convert_out(..., counts=...)``),
never by a second pass; ``MXTensor.convert(dst, report=True)`` returns one, ``slimops convert``
prints one per weight.

Per block (of the source tensor; a partial last block counts as a block):

* ``lossless``: every element's value kept exactly (the scale may have moved);
* ``nan``: a NaN block (scale 0xFF, or an FP8 NaN/Inf element code), NaN after as before;
* the rest are lossy; of all non-NaN blocks, ``saturated`` had an element above the target's max
  (it became +-max), ``flushed`` had a nonzero element that became zero, ``scale_clamped`` had its
  new scale clamped at E8M0's 254 (so its elements were scaled by less than the pair's shift).

NVIDIA ModelOpt reports "lossless blocks %" for its MXFP4 -> NVFP4 cast; this is the same figure
for every Slice-and-Scale pair.
"""

from __future__ import annotations

import dataclasses

import torch

from .reference import REPORT_FIELDS


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """Block counts of one conversion (or, summed with ``+``, of several)."""

    src_fmt: str
    dst_fmt: str
    blocks: int
    lossless: int = 0
    scale_clamped: int = 0
    nan: int = 0
    saturated: int = 0
    flushed: int = 0

    @classmethod
    def from_counts(cls, src_fmt: str, dst_fmt: str, blocks: int, counts: torch.Tensor) -> "ConversionReport":
        """From the op's ``counts`` tensor (int64, in the order of ``REPORT_FIELDS``)."""
        return cls(src_fmt, dst_fmt, blocks, **dict(zip(REPORT_FIELDS, (int(v) for v in counts.tolist()))))

    @property
    def lossy(self) -> int:
        return self.blocks - self.lossless - self.nan

    @property
    def lossless_fraction(self) -> float:
        return self.lossless / self.blocks if self.blocks else 1.0

    def __add__(self, other: "ConversionReport") -> "ConversionReport":
        if not isinstance(other, ConversionReport):
            return NotImplemented
        same = lambda a, b: a if a == b else "mixed"  # noqa: E731
        return ConversionReport(same(self.src_fmt, other.src_fmt), same(self.dst_fmt, other.dst_fmt),
                                *(getattr(self, f) + getattr(other, f) for f in ("blocks", *REPORT_FIELDS)))

    def __str__(self) -> str:
        pct = 100.0 * self.lossless_fraction
        return (f"{self.src_fmt} -> {self.dst_fmt}: {self.blocks} blocks, {self.lossless} lossless ({pct:.1f}%), "
                f"{self.lossy} lossy ({self.saturated} saturated, {self.flushed} flushed to zero, "
                f"{self.scale_clamped} scale clamped), {self.nan} NaN")


def format_table(reports: dict) -> str:
    """One line per tensor and a total: ``{name: ConversionReport}``."""
    rows = [(name, r) for name, r in reports.items()]
    if not rows:
        return "no MX weights converted"
    width = max(8, *(len(n) for n, _ in rows))
    head = f"{'tensor':{width}} {'blocks':>10} {'lossless':>9} {'lossy':>10} {'saturated':>10} {'flushed':>10} " \
           f"{'clamped':>8} {'NaN':>6}"
    lines = [head]
    total = None
    for name, r in rows:
        total = r if total is None else total + r
        lines.append(f"{name:{width}} {r.blocks:>10} {100 * r.lossless_fraction:>8.1f}% {r.lossy:>10} "
                     f"{r.saturated:>10} {r.flushed:>10} {r.scale_clamped:>8} {r.nan:>6}")
    lines.append(f"{'total':{width}} {total.blocks:>10} {100 * total.lossless_fraction:>8.1f}% {total.lossy:>10} "
                 f"{total.saturated:>10} {total.flushed:>10} {total.scale_clamped:>8} {total.nan:>6}")
    return "\n".join(lines)
