"""Triton kernel of mx_convert on the canonical layout, bit-exact with ``reference.py``.

Design: a 256-entry table per (source, target, rounding) and per scale shift
``d`` in [0, delta] (``d < delta`` only where the new scale clamps at 254),
computed once on the host by the reference (``table[d, code] = target code | special << 8``,
special: a NaN/Inf source code). One program converts ``R`` (row, block) pairs:

1. the source codes of the tile ``[R, BS]`` are gathered from the packed bit stream
   (a code may straddle two bytes for 6-bit sources), looked up, and their special flags
   reduced per block; with the scale byte (0xFF) they decide NaN blocks;
2. the target bytes ``[R, BS * bits_dst / 8]`` are assembled from the (at most 4)
   elements that overlap each byte, their codes looked up again (cheap: the loads hit
   the same lines), so every byte is written once, whole.

With a ``counts`` tensor (the conversion report) the table also carries each code's report
flags, ORed per block in step 1 and added to the counts with one atomic per program and count.

On CPU tensors it runs in the Triton interpreter (TRITON_INTERPRET=1); nothing here
uses float arithmetic, so the interpreter and a GPU give the same bits.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .._triton import launch as _launch
from ..mx.formats import MXFormat
from . import reference
from .cpu import new_outputs

TILE_ELEMS = 4096
INTERPRET_TILE_ELEMS = 8192
NUM_WARPS = 4


@triton.jit
def _src_code(data_ptr, row_off, e, valid, SBITS: tl.constexpr, SRC_NBYTES_GUARD):
    """Source code of element e (int64 index in the row) from the packed stream at row_off."""
    bit = e * SBITS
    byte = bit >> 3
    sh = (bit & 7).to(tl.int32)
    lo = tl.load(data_ptr + row_off + byte, mask=valid, other=0).to(tl.int32)
    if SBITS == 6:
        hi = tl.load(data_ptr + row_off + byte + 1, mask=valid & (byte + 1 < SRC_NBYTES_GUARD), other=0).to(tl.int32)
        lo = lo | (hi << 8)
    return (lo >> sh) & ((1 << SBITS) - 1)


@triton.jit
def _mx_convert_kernel(data_ptr, scale_ptr, table_ptr, out_ptr, out_scale_ptr, counts_ptr, npairs, nblocks, L,
                       src_nbytes, dst_nbytes, R: tl.constexpr, BS: tl.constexpr, SBITS: tl.constexpr,
                       DBITS: tl.constexpr, DELTA: tl.constexpr, MAX_CODE: tl.constexpr, NE: tl.constexpr,
                       OBP: tl.constexpr, REPORT: tl.constexpr):
    pid = tl.program_id(0)
    p = pid.to(tl.int64) * R + tl.arange(0, R)
    ok = p < npairs
    row = p // nblocks
    k = p - row * nblocks
    b_src = tl.load(scale_ptr + p, mask=ok, other=0).to(tl.int32)
    b_dst = tl.where(b_src == 255, 255, tl.minimum(b_src + DELTA, 254))
    shift = tl.where(b_src == 255, 0, b_dst - b_src)
    src_off = row * src_nbytes
    # 1. special flags of every element of the block
    e = k[:, None] * BS + tl.arange(0, BS)[None, :]
    valid = ok[:, None] & (e < L)
    code = _src_code(data_ptr, src_off[:, None], e, valid, SBITS, src_nbytes)
    t = tl.load(table_ptr + shift[:, None] * 256 + code, mask=valid, other=0)
    bad = (tl.max((t >> 8) & 1, axis=1) > 0) | (b_src == 255)
    tl.store(out_scale_ptr + p, tl.where(bad, 255, b_dst).to(tl.uint8), mask=ok)
    if REPORT:  # the conversion report: the table's flags (bits 9..11) ORed per block, one atomic per count
        keep = ok & ~bad
        inexact = tl.max((t >> 9) & 1, axis=1) > 0
        sat = tl.max((t >> 10) & 1, axis=1) > 0
        ftz = tl.max((t >> 11) & 1, axis=1) > 0
        tl.atomic_add(counts_ptr + 0, tl.sum((keep & ~inexact).to(tl.int64), axis=0))
        tl.atomic_add(counts_ptr + 1, tl.sum((keep & (b_src + DELTA > 254)).to(tl.int64), axis=0))
        tl.atomic_add(counts_ptr + 2, tl.sum((ok & bad).to(tl.int64), axis=0))
        tl.atomic_add(counts_ptr + 3, tl.sum((keep & sat).to(tl.int64), axis=0))
        tl.atomic_add(counts_ptr + 4, tl.sum((keep & ftz).to(tl.int64), axis=0))
    # 2. the target bytes, each from the elements overlapping it
    OB: tl.constexpr = BS * DBITS // 8
    cols = tl.arange(0, OBP)[None, :]  # OBP: OB rounded up to a power of two (6-bit targets)
    q = k[:, None] * OB + cols  # byte index in the target row
    qmask = ok[:, None] & (q < dst_nbytes) & (cols < OB)
    acc = tl.zeros([R, OBP], tl.int32)
    for m in tl.static_range(NE):
        el = (q * 8) // DBITS + m
        s = (el * DBITS - q * 8).to(tl.int32)  # bit offset of the element relative to the byte
        in_byte = qmask & (s < 8) & (el < L)
        c = _src_code(data_ptr, src_off[:, None], el, in_byte, SBITS, src_nbytes)
        tc = tl.load(table_ptr + shift[:, None] * 256 + c, mask=in_byte, other=0) & 0xFF
        tc = tl.where(bad[:, None], MAX_CODE, tc)
        tc = tl.where(in_byte, tc, 0)
        part = tl.where(s >= 0, tc << tl.maximum(s, 0), tc >> tl.maximum(-s, 0))
        acc = acc | (part & 0xFF)
    tl.store(out_ptr + row[:, None] * dst_nbytes + q, acc.to(tl.uint8), mask=qmask)


@functools.lru_cache(maxsize=None)
def _table_cpu(src: MXFormat, dst: MXFormat, rounding: str) -> torch.Tensor:
    """(delta + 1, 256) int32: target code | special << 8 | report flags (inexact, saturated, flushed)
    << 9, for every source code and shift."""
    delta = reference.delta_of(src, dst)
    codes = torch.arange(256, dtype=torch.int64) & ((1 << src.bits) - 1)
    rows = []
    for d in range(delta + 1):
        shift = torch.full_like(codes, d)
        out, special = reference.convert_codes(codes, shift, src, dst, rounding)
        flags = sum(f.to(torch.int64) << (9 + i) for i, f in
                    enumerate(reference.element_flags(codes, out, shift, src, dst)))
        rows.append(out | (special.to(torch.int64) << 8) | flags)
    return torch.stack(rows).to(torch.int32).contiguous()


def _table(src: MXFormat, dst: MXFormat, rounding: str, device: torch.device) -> torch.Tensor:
    t = _table_cpu(src, dst, rounding)
    return t if device.type == "cpu" else _table_on(src, dst, rounding, str(device))


@functools.lru_cache(maxsize=None)
def _table_on(src: MXFormat, dst: MXFormat, rounding: str, device: str) -> torch.Tensor:
    return _table_cpu(src, dst, rounding).to(device)


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest", out: "tuple | None" = None,
               counts: "torch.Tensor | None" = None):
    """Into ``out`` (contiguous) when given; the report into ``counts`` (zeroed here, added to by the kernel)."""
    rows = data.shape[0]
    nblocks = -(-length // block_size)
    out_data, out_scales = new_outputs(rows, length, dst, block_size, data.device) if out is None else out
    if counts is not None:
        counts.zero_()
    npairs = rows * nblocks
    if npairs == 0:
        return out_data, out_scales
    tile = TILE_ELEMS if data.device.type == "cuda" else INTERPRET_TILE_ELEMS
    r = max(1, min(tile // block_size, triton.next_power_of_2(npairs)))
    grid = (triton.cdiv(npairs, r),)
    ne = {2: 4, 4: 2, 6: 2}[dst.bits]
    _launch(_mx_convert_kernel, grid, data.device, data, scales, _table(src, dst, rounding, data.device), out_data,
            out_scales, out_scales if counts is None else counts, npairs, nblocks, length, data.shape[1],
            out_data.shape[1], R=r, BS=block_size, SBITS=src.bits, DBITS=dst.bits,
            DELTA=reference.delta_of(src, dst), MAX_CODE=dst.max_code, NE=ne,
            OBP=triton.next_power_of_2(block_size * dst.bits // 8), REPORT=counts is not None,
            num_warps=NUM_WARPS)
    return out_data, out_scales
