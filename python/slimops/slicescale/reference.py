"""Pure-PyTorch reference of Slice-and-Scale conversion (``mx_convert``): the test oracle.

Works on the canonical layout of the MX family (the blocked axis last, the rest
flattened into rows): packed ``data`` (rows, ceil(L * bits / 8)) and E8M0
``scales`` (rows, ceil(L / block_size)), and returns the same for the target
format. It goes through no full-size high-precision tensor: rows are processed
in chunks of about ``CHUNK_ELEMS`` elements.

Semantics (one rule for every supported pair, ``delta = emax_src - emax_dst``):

* scale: ``byte_dst = min(byte_src + delta, 254)`` (the E8M0 range), a NaN scale
  (0xFF) stays 0xFF. ``delta`` is 0 between MXINT formats (the scale is kept) and
  6 for E4M3 -> E2M1, 13 for E5M2 -> E2M1, 4 for E4M3 -> E3M2, and so on.
* element: the source code's element value ``P`` (without the scale, exact in
  fp32) times ``2**-(byte_dst - byte_src)`` (exact) is re-encoded in the target
  format exactly as ``mx_quantize`` encodes: round to nearest even (or, with
  ``rounding="truncate"``, toward zero), saturate at the max, keep subnormals.
  For MXINT8 -> MXINTb this is ``clamp(round_half_even(q8 / 2**(8-b)), ±(2**(b-1)-1))``.
* a block that is NaN (scale 0xFF) or holds a NaN/Inf element code (fp8 sources)
  becomes a NaN block: scale 0xFF and every element the target's positive max
  code, which is what ``mx_quantize`` writes for the NaN values such a block
  dequantizes to.
* ``src == dst`` is the identity (a copy, special codes included).

Consequence (tested): for anchors made by ``mx_quantize`` with FLOOR scales,
``convert(a) == quantize(dequantize(a), dst)`` bit for bit in every block whose
source scale byte is not 0; blocks with byte 0 (all-zero blocks, and blocks of
values below ``2**(emax_src - 127)``) keep the new scale ``delta`` instead of a
smaller one (all-zero blocks are still all zero in value).
"""

from __future__ import annotations

import torch

from ..mx import reference as mxref
from ..mx.formats import E8M0_NAN, MXFormat

ROUNDINGS = ("nearest", "truncate")
CHUNK_ELEMS = 1 << 16


def check_pair(src: MXFormat, dst: MXFormat) -> None:
    """Raise ValueError unless ``src -> dst`` is a supported conversion."""
    if src == dst:
        return
    if src.kind != dst.kind:
        raise ValueError(f"dst_fmt: cannot convert {src.name} to {dst.name}: Slice-and-Scale converts within "
                         f"one family (MXINT -> MXINT or MXFP -> MXFP)")
    if dst.bits >= src.bits:
        raise ValueError(f"dst_fmt: cannot convert {src.name} to {dst.name}: the target must have fewer bits "
                         f"than the source ({dst.bits} >= {src.bits}); same-format conversion is the identity")


def delta_of(src: MXFormat, dst: MXFormat) -> int:
    """The shared-exponent shift ``emax_src - emax_dst`` (>= 0 for every supported pair)."""
    return src.emax - dst.emax


def convert_scales(scales: torch.Tensor, delta: int) -> torch.Tensor:
    """Source scale bytes (int64) -> target bytes: ``min(b + delta, 254)``, 0xFF kept."""
    return torch.where(scales == E8M0_NAN, scales, (scales + delta).clamp(max=254))


def element_values(codes: torch.Tensor, fmt: MXFormat) -> torch.Tensor:
    """Element codes (int64) -> their values without the scale (fp32, exact; NaN/Inf codes of fp8)."""
    if fmt.is_int:
        signed = torch.where(codes >= (1 << (fmt.bits - 1)), codes - (1 << fmt.bits), codes)
        return signed.to(torch.float32) * 2.0 ** (-fmt.mbits)
    sign_bit = 1 << (fmt.bits - 1)
    val = mxref.decode_magnitude(codes & (sign_bit - 1), fmt)
    return torch.where((codes & sign_bit) != 0, -val, val)


def convert_codes(codes: torch.Tensor, shift: torch.Tensor, src: MXFormat, dst: MXFormat,
                  rounding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Source codes and per-element shift d (both int64) -> (target codes, special mask).

    ``special`` marks NaN/Inf source codes.
    """
    v = element_values(codes, src)
    special = ~torch.isfinite(v)
    v = torch.where(special, torch.zeros_like(v), v)
    w = v * mxref.exp2_f32(-shift)  # exact: |P| >= 2**-16 and shift <= 13
    rand = torch.zeros_like(codes) if rounding == "truncate" else None  # SR with 0 random bits: toward zero
    mag = mxref.encode_magnitude(w, dst, rand)
    sign = (mxref.f32_bits(v) >> 31).to(torch.bool)
    if dst.is_int:
        out = torch.where(sign, -mag, mag) & ((1 << dst.bits) - 1)
    else:
        out = mag | (sign.to(torch.int64) << (dst.bits - 1))
    return out, special


def element_flags(codes: torch.Tensor, out: torch.Tensor, shift: torch.Tensor, src: MXFormat,
                  dst: MXFormat) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The conversion report's element flags (``ConversionReport``): with ``v`` the source value
    times ``2**-shift`` and ``t`` the target's (both exact in fp32): inexact ``t != v``, saturated
    ``|v| > max``, flushed ``v != 0 and t == 0``; none for NaN/Inf source codes."""
    v = element_values(codes, src) * mxref.exp2_f32(-shift)
    t = element_values(out, dst)
    finite = torch.isfinite(v)
    return (t != v) & finite, (v.abs() > dst.max_value) & finite, (v != 0) & (t == 0) & finite


# The conversion report's counts, in the order of ReportCount (kernels/slicescale/slicescale_element.cuh).
REPORT_FIELDS = ("lossless", "scale_clamped", "nan", "saturated", "flushed")


def _blocks_any(x: torch.Tensor, nblocks: int, block_size: int) -> torch.Tensor:
    """(rows, L) bool -> (rows, nblocks): any element of the block."""
    pad = nblocks * block_size - x.shape[1]
    return torch.nn.functional.pad(x, (0, pad)).view(x.shape[0], nblocks, block_size).any(dim=-1)


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest", out: "tuple | None" = None,
               counts: "torch.Tensor | None" = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed data, scales) of ``src`` in the canonical layout -> the same in ``dst`` (into ``out``,
    a pair of (rows, bytes) and (rows, nblocks) uint8 tensors, when given). With ``counts`` (int64,
    ``len(REPORT_FIELDS)``), the conversion report's block counts are written there."""
    check_pair(src, dst)
    rows = data.shape[0]
    nblocks = -(-length // block_size)
    if out is None:
        out = (torch.empty(rows, dst.packed_bytes(length), dtype=torch.uint8, device=data.device),
               torch.empty(rows, nblocks, dtype=torch.uint8, device=data.device))
    out_data, out_scales = out
    tally = torch.zeros(len(REPORT_FIELDS), dtype=torch.int64, device=data.device)
    delta = delta_of(src, dst)
    if rows * length == 0:
        out_scales.copy_(convert_scales(scales.to(torch.int64), delta).to(torch.uint8))
    step = max(1, CHUNK_ELEMS // max(length, 1))
    for r0 in range(0, rows if length else 0, step):
        r1 = min(rows, r0 + step)
        b_src = scales[r0:r1].to(torch.int64)
        codes = mxref.unpack(data[r0:r1], src.bits, length)
        if src == dst:  # the identity: a copy (NaN blocks counted as such, the rest lossless)
            special = ~torch.isfinite(element_values(codes, src))
            bad = _blocks_any(special, nblocks, block_size) | (b_src == E8M0_NAN)
            out_data[r0:r1], out_scales[r0:r1] = data[r0:r1], scales[r0:r1]
            tally[0] += (~bad).sum()
            tally[2] += bad.sum()
            continue
        b_dst = convert_scales(b_src, delta)
        shift = torch.where(b_src == E8M0_NAN, torch.zeros_like(b_src), b_dst - b_src)
        per_elem = shift.repeat_interleave(block_size, dim=1)[:, :length]
        conv, special = convert_codes(codes, per_elem, src, dst, rounding)
        bad = _blocks_any(special, nblocks, block_size) | (b_src == E8M0_NAN)
        if counts is not None:
            keep = ~bad
            inexact, sat, ftz = (_blocks_any(f, nblocks, block_size)
                                 for f in element_flags(codes, conv, per_elem, src, dst))
            tally += torch.stack([(keep & ~inexact).sum(), (keep & (b_src + delta > 254)).sum(), bad.sum(),
                                  (keep & sat).sum(), (keep & ftz).sum()])
        b_dst = torch.where(bad, torch.full_like(b_dst, E8M0_NAN), b_dst)
        bad_el = bad.repeat_interleave(block_size, dim=1)[:, :length]
        conv = torch.where(bad_el, torch.full_like(conv, dst.max_code), conv)
        out_data[r0:r1] = mxref.pack(conv, dst.bits)
        out_scales[r0:r1] = b_dst.to(torch.uint8)
    if counts is not None:
        counts.copy_(tally)
    return out_data, out_scales
