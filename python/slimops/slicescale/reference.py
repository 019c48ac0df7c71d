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


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest") -> tuple[torch.Tensor, torch.Tensor]:
    """(packed data, scales) of ``src`` in the canonical layout -> the same in ``dst``."""
    check_pair(src, dst)
    if src == dst:
        return data.clone(), scales.clone()
    rows = data.shape[0]
    nblocks = -(-length // block_size)
    out_data = torch.empty(rows, dst.packed_bytes(length), dtype=torch.uint8, device=data.device)
    out_scales = torch.empty(rows, nblocks, dtype=torch.uint8, device=data.device)
    if rows * length == 0:
        out_scales.copy_(convert_scales(scales.to(torch.int64), delta_of(src, dst)).to(torch.uint8))
        return out_data, out_scales
    step = max(1, CHUNK_ELEMS // length)
    delta = delta_of(src, dst)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        b_src = scales[r0:r1].to(torch.int64)
        b_dst = convert_scales(b_src, delta)
        shift = torch.where(b_src == E8M0_NAN, torch.zeros_like(b_src), b_dst - b_src)
        codes = mxref.unpack(data[r0:r1], src.bits, length)
        per_elem = shift.repeat_interleave(block_size, dim=1)[:, :length]
        out, special = convert_codes(codes, per_elem, src, dst, rounding)
        pad = nblocks * block_size - length
        bad = torch.nn.functional.pad(special, (0, pad)).view(r1 - r0, nblocks, block_size).any(dim=-1)
        bad = bad | (b_src == E8M0_NAN)
        b_dst = torch.where(bad, torch.full_like(b_dst, E8M0_NAN), b_dst)
        bad_el = bad.repeat_interleave(block_size, dim=1)[:, :length]
        out = torch.where(bad_el, torch.full_like(out, dst.max_code), out)
        out_data[r0:r1] = mxref.pack(out, dst.bits)
        out_scales[r0:r1] = b_dst.to(torch.uint8)
    return out_data, out_scales
