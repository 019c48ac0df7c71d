"""Triton kernels of ``mx_linear`` and ``mx_linear_backward`` (CUDA; CPU tensors under TRITON_INTERPRET=1).

``y = x @ dequantize(W).T + bias``: one program per (BM rows of x) x (BN rows of W) tile of y (and,
with SPLIT > 1, per share of K: the programs' fp32 parts are added atomically, for decode-sized M
where the row tiles alone are too few to fill the GPU). For each BK-slice of K the program loads
the tile's packed codes and scale bytes along the rows, each byte once (``_row_codes``), decodes them in
registers to the exact fp32 values of ``mx_dequantize`` (the MX family's Triton ``_decode``:
saturated at fp32's largest finite value, NaN for a NaN-scale block or an fp8 NaN code) and
accumulates ``tl.dot`` in fp32:

* fp32 and fp16 x: ``tl.dot`` of fp32 operands with ``input_precision="ieee"`` (exact products,
  the reference's up to the order of the sums);
* bf16 x: the decoded values rounded to bf16 (as ``dequantize(W, bf16)``: exact except values
  below 2^-133, saturated at bf16's largest finite value) and ``tl.dot`` of bf16 operands (tensor
  cores; the result is today's ``F.linear(x, dequantize(W, bf16))`` up to the order of the sums).

Where the GPU has native MX dot products (compute capability 10.x) and the weight is MXFP4, MXFP8
E4M3 or E5M2 with blocks of 32, bf16 x goes through ``tl.dot_scaled`` instead (the codes and E8M0
scales straight to the tensor cores). That path has never run: no such GPU was at hand, and the
Triton interpreter has no ``dot_scaled``.

``grad_x = grad_y @ dequantize(W)``: one program per (BM x BK) tile of grad_x, looping over N.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .._triton import launch as _launch
from ..mx.formats import MXFormat
from ..mx.triton import _decode, _fmt_meta, _store_f32_bits

_KIND = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
DOT_SCALED_FORMATS = {"mxfp4_e2m1": 0, "mxfp8_e4m3": 1, "mxfp8_e5m2": 2}  # tl.dot_scaled's e2m1, e4m3, e5m2


@triton.jit
def _row_codes(row, rmask, k0, nbytes, BN: tl.constexpr, BK: tl.constexpr, BITS: tl.constexpr):
    """The codes of W[n, k0 : k0 + BK] (k0 a multiple of 4 codes) as int32 [BN, BK], from byte loads that run
    along each packed row (contiguous for 8, 4 and 2 bits, three byte planes for 6): codes are packed
    LSB first, code i at bit BITS * i of the row. ``row`` [BN, 1] points at each row's first byte."""
    if BITS == 8:
        kb = k0 + tl.arange(0, BK)
        return tl.load(row + kb[None, :], mask=rmask & (kb[None, :] < nbytes), other=0).to(tl.int32)
    elif BITS == 4:
        kb = k0 // 2 + tl.arange(0, BK // 2)
        b = tl.load(row + kb[None, :], mask=rmask & (kb[None, :] < nbytes), other=0).to(tl.int32)
        return tl.reshape(tl.join(b & 15, b >> 4), [BN, BK])
    elif BITS == 2:
        kb = k0 // 4 + tl.arange(0, BK // 4)
        b = tl.load(row + kb[None, :], mask=rmask & (kb[None, :] < nbytes), other=0).to(tl.int32)
        return tl.reshape(tl.join(tl.join(b & 3, (b >> 4) & 3), tl.join((b >> 2) & 3, b >> 6)), [BN, BK])
    else:  # 6 bits: four codes in three bytes
        kb = (k0 // 4 + tl.arange(0, BK // 4)) * 3
        b0 = tl.load(row + kb[None, :], mask=rmask & (kb[None, :] < nbytes), other=0).to(tl.int32)
        b1 = tl.load(row + kb[None, :] + 1, mask=rmask & (kb[None, :] + 1 < nbytes), other=0).to(tl.int32)
        b2 = tl.load(row + kb[None, :] + 2, mask=rmask & (kb[None, :] + 2 < nbytes), other=0).to(tl.int32)
        c0, c1 = b0 & 63, (b0 >> 6) | ((b1 & 15) << 2)
        c2, c3 = (b1 >> 4) | ((b2 & 3) << 4), b2 >> 2
        return tl.reshape(tl.join(tl.join(c0, c2), tl.join(c1, c3)), [BN, BK])


@triton.jit
def _weight_tile(data_ptr, scale_ptr, n, k0, N, K, nbytes, nblocks, BN: tl.constexpr, BK: tl.constexpr,
                 BS: tl.constexpr, BITS: tl.constexpr, MBITS: tl.constexpr, BIAS: tl.constexpr,
                 IS_INT: tl.constexpr, SPECIAL: tl.constexpr, OUT_KIND: tl.constexpr):
    """W[n, k0 : k0 + BK] for the row indices n [BN] (k0 a multiple of BK, BK of BS): fp32 values, zero
    outside [0, N) x [0, K). Codes and scale bytes are loaded along the rows, once per byte; each scale
    byte is then broadcast over its BS codes."""
    rmask = n[:, None] < N
    code = _row_codes(data_ptr + n[:, None].to(tl.int64) * nbytes, rmask, k0, nbytes, BN, BK, BITS)
    ks = k0 // BS + tl.arange(0, BK // BS)
    sb = tl.load(scale_ptr + n[:, None].to(tl.int64) * nblocks + ks[None, :], mask=rmask & (ks[None, :] < nblocks),
                 other=0).to(tl.int32)
    sb = tl.reshape(tl.broadcast_to(sb[:, :, None], [BN, BK // BS, BS]), [BN, BK])
    bits = _decode(code, sb, MBITS, BIAS, IS_INT, BITS, SPECIAL, OUT_KIND)
    k = k0 + tl.arange(0, BK)
    return tl.where(rmask & (k[None, :] < K), tl.cast(bits, tl.float32, bitcast=True), 0.0)


@triton.jit
def _round_bf16(w):
    """fp32 values -> the nearest bf16 values (even on ties; NaN kept), still as fp32, by integer steps."""
    u = tl.cast(w, tl.uint32, bitcast=True)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    r = tl.where((u & 0x7FFFFFFF) > 0x7F800000, u, r)
    return tl.cast(r, tl.float32, bitcast=True)


@triton.jit
def _mx_linear_kernel(x_ptr, data_ptr, scale_ptr, bias_ptr, y_ptr, M, N, K, nbytes, nblocks,
                      BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, BS: tl.constexpr, BITS: tl.constexpr,
                      MBITS: tl.constexpr, BIAS: tl.constexpr, IS_INT: tl.constexpr, SPECIAL: tl.constexpr,
                      X_KIND: tl.constexpr, HAS_BIAS: tl.constexpr, INTERPRET: tl.constexpr, SPLIT: tl.constexpr):
    """y[m, n] = sum_k x[m, k] * W[n, k] + bias[n] for one BM x BN tile. With SPLIT > 1, program s of the third
    grid axis sums the K-slices s, s + SPLIT, ... and adds its fp32 part into y (fp32, zeroed) atomically."""
    pid_m, pid_n, pid_s = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    m = pid_m * BM + tl.arange(0, BM)
    n = pid_n * BN + tl.arange(0, BN)
    acc = tl.zeros([BM, BN], tl.float32)
    k0 = pid_s * BK
    while k0 < K:  # a while loop: the interpreter cannot range() over a kernel argument
        k = k0 + tl.arange(0, BK)
        xt = tl.load(x_ptr + m[:, None].to(tl.int64) * K + k[None, :], mask=(m[:, None] < M) & (k[None, :] < K),
                     other=0.0)
        if X_KIND == 1:  # bf16: as dequantize(W, bf16), then bf16 tensor-core products
            w = _round_bf16(_weight_tile(data_ptr, scale_ptr, n, k0, N, K, nbytes, nblocks, BN, BK, BS, BITS, MBITS,
                                         BIAS, IS_INT, SPECIAL, 1))
            if INTERPRET:  # the interpreter's bf16 tl.dot is not exact: the same products in fp32
                acc += tl.dot(xt.to(tl.float32), tl.trans(w), input_precision="ieee")
            else:
                acc += tl.dot(xt, tl.trans(w.to(tl.bfloat16)))
        else:
            w = _weight_tile(data_ptr, scale_ptr, n, k0, N, K, nbytes, nblocks, BN, BK, BS, BITS, MBITS, BIAS,
                             IS_INT, SPECIAL, 0)
            acc += tl.dot(xt.to(tl.float32), tl.trans(w), input_precision="ieee")
        k0 += BK * SPLIT
    if HAS_BIAS:
        if pid_s == 0:
            acc += tl.load(bias_ptr + n, mask=n < N, other=0.0).to(tl.float32)[None, :]
    inside = (m[:, None] < M) & (n[None, :] < N)
    if SPLIT == 1:
        _store_f32_bits(y_ptr, m[:, None].to(tl.int64) * N + n[None, :], tl.cast(acc, tl.int32, bitcast=True),
                        inside, X_KIND)
    else:
        tl.atomic_add(y_ptr + m[:, None].to(tl.int64) * N + n[None, :], acc, mask=inside)


@triton.jit
def _mx_linear_dot_scaled_kernel(x_ptr, data_ptr, scale_ptr, bias_ptr, y_ptr, M, N, K, nbytes, nblocks,
                                 BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, FORMAT: tl.constexpr,
                                 PER_BYTE: tl.constexpr, HAS_BIAS: tl.constexpr):
    """The same for bf16 x and an MXFP4 / MXFP8 weight in blocks of 32, through tl.dot_scaled (K a multiple
    of BK: the caller checks). Not run yet (module docstring)."""
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    m = pid_m * BM + tl.arange(0, BM)
    n = pid_n * BN + tl.arange(0, BN)
    acc = tl.zeros([BM, BN], tl.float32)
    k0 = 0
    while k0 < K:
        k = k0 + tl.arange(0, BK)
        xt = tl.load(x_ptr + m[:, None].to(tl.int64) * K + k[None, :], mask=m[:, None] < M, other=0.0)
        kb = k0 // PER_BYTE + tl.arange(0, BK // PER_BYTE)
        wt = tl.load(data_ptr + n[:, None].to(tl.int64) * nbytes + kb[None, :], mask=n[:, None] < N, other=0)
        ks = k0 // 32 + tl.arange(0, BK // 32)
        st = tl.load(scale_ptr + n[:, None].to(tl.int64) * nblocks + ks[None, :], mask=n[:, None] < N, other=0)
        if FORMAT == 0:
            acc = tl.dot_scaled(xt, None, "bf16", tl.trans(wt), st, "e2m1", acc)
        elif FORMAT == 1:
            acc = tl.dot_scaled(xt, None, "bf16", tl.trans(wt), st, "e4m3", acc)
        else:
            acc = tl.dot_scaled(xt, None, "bf16", tl.trans(wt), st, "e5m2", acc)
        k0 += BK
    if HAS_BIAS:
        acc += tl.load(bias_ptr + n, mask=n < N, other=0.0).to(tl.float32)[None, :]
    _store_f32_bits(y_ptr, m[:, None].to(tl.int64) * N + n[None, :], tl.cast(acc, tl.int32, bitcast=True),
                    (m[:, None] < M) & (n[None, :] < N), 1)


@triton.jit
def _mx_linear_backward_kernel(g_ptr, data_ptr, scale_ptr, out_ptr, M, N, K, nbytes, nblocks,
                               BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, BS: tl.constexpr,
                               BITS: tl.constexpr, MBITS: tl.constexpr, BIAS: tl.constexpr, IS_INT: tl.constexpr,
                               SPECIAL: tl.constexpr, G_KIND: tl.constexpr):
    """grad_x[m, k] = sum_n grad_y[m, n] * W[n, k] for one BM x BK tile, in fp32."""
    pid_m, pid_k = tl.program_id(0), tl.program_id(1)
    m = pid_m * BM + tl.arange(0, BM)
    k = pid_k * BK + tl.arange(0, BK)
    acc = tl.zeros([BM, BK], tl.float32)
    n0 = 0
    while n0 < N:
        n = n0 + tl.arange(0, BN)
        g = tl.load(g_ptr + m[:, None].to(tl.int64) * N + n[None, :], mask=(m[:, None] < M) & (n[None, :] < N),
                    other=0.0).to(tl.float32)
        w = _weight_tile(data_ptr, scale_ptr, n, pid_k * BK, N, K, nbytes, nblocks, BN, BK, BS, BITS, MBITS, BIAS,
                         IS_INT, SPECIAL, 0)
        acc += tl.dot(g, w, input_precision="ieee")
        n0 += BN
    _store_f32_bits(out_ptr, m[:, None].to(tl.int64) * K + k[None, :], tl.cast(acc, tl.int32, bitcast=True),
                    (m[:, None] < M) & (k[None, :] < K), G_KIND)


# ----------------------------------------------------------------------------- launchers


def _interpreting(device: torch.device) -> bool:
    return device.type != "cuda"


@functools.lru_cache(maxsize=None)
def dot_scaled_capable(device_index: int) -> bool:
    """A GPU with native MX dot products (compute capability 10.x)."""
    return torch.cuda.get_device_capability(device_index)[0] == 10


# GPU tiles by rows of x (M <= 16: decode-sized; larger: GEMM tiles), replaceable for a tile sweep
# (bench/mxgemm/triton_tiles.py, step 6 of bench/gpu/check.sh). SPLIT splits K among programs (M <= 16 has too
# few row tiles to fill the GPU otherwise). Guesses, never measured: on the H200 (bench/reports/gpu-h200/) the
# first guess (64 x 64 x 64, no split, the weight gathered byte by byte per element) ran 27-37x slower than
# cuBLAS at M = 1 and 16; the row loads and the split came after, and the sweep has not run yet.
GPU_TILES = {"small": dict(BM=16, BN=64, BK=128, SPLIT=4, num_warps=4),
             "large": dict(BM=64, BN=64, BK=64, SPLIT=1, num_warps=4)}


def _tiles(device: torch.device, block_size: int, m: int = 64, tiles: "dict | None" = None) -> dict:
    if tiles is not None:
        t = dict(tiles)
    elif _interpreting(device):  # few, large programs: the interpreter costs per program instance
        t = dict(BM=32, BN=64, BK=64)
    else:
        t = dict(GPU_TILES["small" if m <= 16 else "large"])
    t["BK"] = max(t["BK"], block_size)
    t.setdefault("SPLIT", 1)
    return t


def linear_2d(x2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat, block_size: int,
              bias: "torch.Tensor | None", dot_scaled: "bool | None" = None,
              tiles: "dict | None" = None) -> torch.Tensor:
    """``x2d @ dequantize(W).T + bias``; ``tiles`` (BM, BN, BK, SPLIT, num_warps, ...) overrides the defaults."""
    m, k = x2d.shape
    n = w_data.shape[0]
    y = torch.empty(m, n, dtype=x2d.dtype, device=x2d.device)
    meta, special = _fmt_meta(fmt)
    t = _tiles(x2d.device, block_size, m, tiles)
    split = t.pop("SPLIT")
    grid = (triton.cdiv(m, t["BM"]), triton.cdiv(n, t["BN"]))
    b = bias if bias is not None else y
    if dot_scaled is None:
        dot_scaled = (x2d.dtype == torch.bfloat16 and fmt.name in DOT_SCALED_FORMATS and block_size == 32
                      and x2d.device.type == "cuda" and dot_scaled_capable(x2d.device.index or 0))
    per_byte = 2 if fmt.bits == 4 else 1
    if dot_scaled and k % t["BK"] == 0:
        _launch(_mx_linear_dot_scaled_kernel, grid, x2d.device, x2d, w_data, w_scales, b, y, m, n, k,
                w_data.shape[1], w_scales.shape[1], BM=t["BM"], BN=t["BN"], BK=t["BK"],
                FORMAT=DOT_SCALED_FORMATS[fmt.name], PER_BYTE=per_byte, HAS_BIAS=bias is not None)
        return y
    split = max(1, min(split, triton.cdiv(k, t["BK"])))
    out = y if split == 1 else torch.zeros(m, n, dtype=torch.float32, device=x2d.device)
    _launch(_mx_linear_kernel, grid + (split,), x2d.device, x2d, w_data, w_scales, b, out, m, n, k, w_data.shape[1],
            w_scales.shape[1], BS=block_size, SPECIAL=special, X_KIND=_KIND[x2d.dtype], HAS_BIAS=bias is not None,
            INTERPRET=_interpreting(x2d.device), SPLIT=split, **t, **meta)
    return y if split == 1 else y.copy_(out)


def linear_backward_2d(g2d: torch.Tensor, w_data: torch.Tensor, w_scales: torch.Tensor, fmt: MXFormat,
                       block_size: int, in_features: int) -> torch.Tensor:
    m, n = g2d.shape
    k = in_features
    out = torch.empty(m, k, dtype=g2d.dtype, device=g2d.device)
    meta, special = _fmt_meta(fmt)
    t = (_tiles(g2d.device, block_size) if _interpreting(g2d.device)
         else dict(BM=64, BN=64, BK=max(64, block_size), num_warps=4))
    t.pop("SPLIT", None)
    grid = (triton.cdiv(m, t["BM"]), triton.cdiv(k, t["BK"]))
    _launch(_mx_linear_backward_kernel, grid, g2d.device, g2d, w_data, w_scales, out, m, n, k, w_data.shape[1],
            w_scales.shape[1], BS=block_size, SPECIAL=special, G_KIND=_KIND[g2d.dtype], **t, **meta)
    return out
