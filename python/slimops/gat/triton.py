"""Triton kernels of the GAT ops (CUDA; CPU tensors under ``TRITON_INTERPRET=1``).

Forward, one program per (destination row, head): an online softmax over the row's
in-edges in blocks of ``BLOCK_E``, gathering ``h[j, head, :]`` (``BLOCK_C`` >= C channels),
accumulating in fp32; saves lse = m + log(s). Backward, deterministic (no atomics):

* ``_bwd_dst``, per (destination row, head): delta = g . out, and grad_a_dst;
* ``_bwd_src``, per (source node, head) over a transposed index (CSR positions grouped by
  source; built with torch ops, no host sync): grad_h and grad_a_src.

alpha is recomputed from lse; the math and the dropout hash are those of
:mod:`slimops.gat.reference` (bit-identical masks).
"""

from __future__ import annotations


import torch
import triton
import triton.language as tl

from .._triton import launch as _launch
from . import reference


@triton.jit
def _fmix32(x):
    x ^= x >> 16
    x *= 0x85EBCA6B
    x ^= x >> 13
    x *= 0xC2B2AE35
    x ^= x >> 16
    return x


@triton.jit
def _dropout_w(key, k, offset, head, p, inv_keep):
    """keep/(1-p) for CSR positions ``k`` (int64 tensor) of ``head``; ``key`` is the uint32 seed key."""
    c = k + offset
    lo = (c & 0xFFFFFFFF).to(tl.uint32)
    hi = ((c >> 32) & 0xFFFFFFFF).to(tl.uint32)
    t = _fmix32(_fmix32(key ^ lo) ^ hi)
    v = _fmix32(t ^ head.to(tl.uint32))
    u = (v >> 8).to(tl.float32) * (1.0 / 16777216.0)
    return tl.where(u >= p, inv_keep, 0.0)


@triton.jit
def _leaky(z, slope):
    return tl.where(z > 0, z, z * slope)


@triton.jit
def _row_range(indptr_ptr, i, NE):
    """Row i's CSR range, guarded as the CUDA kernels do: both ends clamped to [0, E], the end to >= the start
    (nothing validates a CSR on the GPU; a malformed one gives some output and no read out of bounds)."""
    start = tl.minimum(tl.maximum(tl.load(indptr_ptr + i).to(tl.int64), 0), NE)
    end = tl.minimum(tl.maximum(tl.load(indptr_ptr + i + 1).to(tl.int64), start), NE)
    return start, end


@triton.jit
def _fwd(h_ptr, as_ptr, ad_ptr, ae_ptr, indptr_ptr, indices_ptr, out_ptr, lse_ptr, H, C, NS, NE, slope, p, inv_keep,
         key_i32, offset, DROP: tl.constexpr, EDGE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    key = key_i32.to(tl.uint32, bitcast=True)
    start, end = _row_range(indptr_ptr, i, NE)
    ad = tl.load(ad_ptr + i * H + hd).to(tl.float32)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.zeros((), tl.float32)
    acc = tl.zeros((BLOCK_C,), tl.float32)
    n_kept = tl.zeros((), tl.int32)
    e0 = start
    while e0 < end:  # a while loop: the interpreter cannot range() over loaded scalars
        ks = e0 + tl.arange(0, BLOCK_E).to(tl.int64)
        j = tl.load(indices_ptr + ks, mask=ks < end, other=0).to(tl.int64)
        emask = (ks < end) & (j >= 0) & (j < NS)  # a source outside [0, N_src) is skipped (guarded)
        j = tl.where(emask, j, 0)
        z = tl.load(as_ptr + j * H + hd, mask=emask, other=0.0).to(tl.float32) + ad
        if EDGE:
            z += tl.load(ae_ptr + ks * H + hd, mask=emask, other=0.0).to(tl.float32)
        e = tl.where(emask, _leaky(z, slope), float("-inf"))
        m_new = tl.maximum(m, tl.max(e, 0))  # may skip a NaN logit: its q below is NaN
        scale = tl.exp(m - m_new)            # NaN when every logit so far is -inf, as softmax
        q = tl.where(emask, tl.exp(e - m_new), 0.0)
        s = s * scale + tl.sum(q, 0)
        kept = emask
        if DROP:
            wt = _dropout_w(key, ks, offset, hd, p, inv_keep)
            q = q * wt
            kept = emask & (wt != 0.0)       # a dropped edge's row is not read
        hv = tl.load(h_ptr + (j * H + hd)[:, None] * C + cs[None, :], mask=kept[:, None] & cmask[None, :],
                     other=0.0).to(tl.float32)
        acc = acc * scale + tl.sum(tl.where(kept[:, None], q[:, None] * hv, 0.0), 0)
        n_kept += tl.sum(kept.to(tl.int32), 0)
        m = m_new
        e0 += BLOCK_E
    has = end > start  # a row with in-edges: IEEE softmax (NaN in, NaN out); without: zeros, lse = -inf
    # out = sum over kept edges of (q / s) h: zeros when dropout kept none (even if s is NaN)
    res = tl.where(n_kept > 0, acc / tl.where(has, s, 1.0), 0.0)
    tl.store(out_ptr + (i * H + hd) * C + cs, res.to(out_ptr.dtype.element_ty), mask=cmask)
    tl.store(lse_ptr + i * H + hd, tl.where(has, m + tl.log(tl.where(has, s, 1.0)), float("-inf")))


@triton.jit
def _bwd_dst(g_ptr, h_ptr, as_ptr, ad_ptr, ae_ptr, indptr_ptr, indices_ptr, out_ptr, lse_ptr, delta_ptr, gad_ptr,
             gae_ptr, H, C, NS, NE, slope, p, inv_keep, key_i32, offset, DROP: tl.constexpr, EDGE: tl.constexpr,
             BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    key = key_i32.to(tl.uint32, bitcast=True)
    start, end = _row_range(indptr_ptr, i, NE)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    gi = tl.load(g_ptr + (i * H + hd) * C + cs, mask=cmask, other=0.0).to(tl.float32)
    oi = tl.load(out_ptr + (i * H + hd) * C + cs, mask=cmask, other=0.0).to(tl.float32)
    delta = tl.sum(gi * oi, 0)
    tl.store(delta_ptr + i * H + hd, delta)
    ad = tl.load(ad_ptr + i * H + hd).to(tl.float32)
    lse = tl.load(lse_ptr + i * H + hd)
    acc = tl.zeros((), tl.float32)
    e0 = start
    while e0 < end:  # a while loop: the interpreter cannot range() over loaded scalars
        ks = e0 + tl.arange(0, BLOCK_E).to(tl.int64)
        j = tl.load(indices_ptr + ks, mask=ks < end, other=0).to(tl.int64)
        emask = (ks < end) & (j >= 0) & (j < NS)  # a source outside [0, N_src) is skipped (guarded)
        j = tl.where(emask, j, 0)
        z = tl.load(as_ptr + j * H + hd, mask=emask, other=0.0).to(tl.float32) + ad
        if EDGE:
            z += tl.load(ae_ptr + ks * H + hd, mask=emask, other=0.0).to(tl.float32)
        alpha = tl.where(emask, tl.exp(_leaky(z, slope) - lse), 0.0)
        kept = emask
        if DROP:
            wt = _dropout_w(key, ks, offset, hd, p, inv_keep)
            kept = emask & (wt != 0.0)
        hv = tl.load(h_ptr + (j * H + hd)[:, None] * C + cs[None, :], mask=kept[:, None] & cmask[None, :],
                     other=0.0).to(tl.float32)
        gh = tl.where(kept, tl.sum(hv * gi[None, :], 1), 0.0)
        if DROP:
            gh = gh * wt
        ds = tl.where(emask, alpha * (gh - delta) * tl.where(z > 0, 1.0, slope), 0.0)
        if EDGE:
            tl.store(gae_ptr + ks * H + hd, ds.to(gae_ptr.dtype.element_ty), mask=emask)
        acc += tl.sum(ds, 0)
        e0 += BLOCK_E
    tl.store(gad_ptr + i * H + hd, acc.to(gad_ptr.dtype.element_ty))


@triton.jit
def _bwd_src(g_ptr, h_ptr, as_ptr, ad_ptr, ae_ptr, colptr_ptr, csc_edge_ptr, csc_row_ptr, lse_ptr, delta_ptr,
             gh_ptr, gas_ptr, H, C, ND, slope, p, inv_keep, key_i32, offset, DROP: tl.constexpr, EDGE: tl.constexpr,
             BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr):
    j = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    key = key_i32.to(tl.uint32, bitcast=True)
    start = tl.load(colptr_ptr + j)
    end = tl.load(colptr_ptr + j + 1)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    hj = tl.load(h_ptr + (j * H + hd) * C + cs, mask=cmask, other=0.0).to(tl.float32)
    asj = tl.load(as_ptr + j * H + hd).to(tl.float32)
    acc = tl.zeros((BLOCK_C,), tl.float32)
    gsum = tl.zeros((), tl.float32)
    q0 = start
    while q0 < end:
        qs = q0 + tl.arange(0, BLOCK_E).to(tl.int64)
        k = tl.load(csc_edge_ptr + qs, mask=qs < end, other=0).to(tl.int64)
        i = tl.load(csc_row_ptr + qs, mask=qs < end, other=0).to(tl.int64)
        emask = (qs < end) & (i < ND)  # row N_dst: a position outside every row (malformed CSR), skipped
        i = tl.where(emask, i, 0)
        z = asj + tl.load(ad_ptr + i * H + hd, mask=emask, other=0.0).to(tl.float32)
        if EDGE:
            z += tl.load(ae_ptr + k * H + hd, mask=emask, other=0.0).to(tl.float32)
        lse = tl.load(lse_ptr + i * H + hd, mask=emask, other=0.0)
        alpha = tl.where(emask, tl.exp(_leaky(z, slope) - lse), 0.0)
        w = _dropout_w(key, k, offset, hd, p, inv_keep) if DROP else 1.0
        kept = emask & (w != 0.0) if DROP else emask
        gi = tl.load(g_ptr + (i * H + hd)[:, None] * C + cs[None, :], mask=kept[:, None] & cmask[None, :],
                     other=0.0).to(tl.float32)
        delta = tl.load(delta_ptr + i * H + hd, mask=emask, other=0.0)
        gh = tl.where(kept, tl.sum(gi * hj[None, :], 1), 0.0)
        acc += tl.sum(tl.where(kept[:, None], (alpha * w)[:, None] * gi, 0.0), 0)
        gsum += tl.sum(tl.where(emask, alpha * (w * gh - delta) * tl.where(z > 0, 1.0, slope), 0.0), 0)
        q0 += BLOCK_E
    tl.store(gh_ptr + (j * H + hd) * C + cs, acc.to(gh_ptr.dtype.element_ty), mask=cmask)
    tl.store(gas_ptr + j * H + hd, gsum.to(gas_ptr.dtype.element_ty))


# ----------------------------------------------------------------------------- host side



def _scalars(negative_slope, dropout, seed):
    key = reference.seed_key(seed)
    key_i32 = key - (1 << 32) if key >= 1 << 31 else key
    inv_keep = float(torch.tensor(1.0 / (1.0 - dropout), dtype=torch.float32))
    return float(negative_slope), float(dropout), inv_keep, key_i32


def _blocks(channels, device):
    block_c = triton.next_power_of_2(max(channels, 1))
    block_e = 16 if device.type == "cpu" else max(16, min(64, 4096 // block_c))
    return block_e, block_c


def forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None):
    n_dst, heads = a_dst.shape
    channels = h.shape[2]
    out = torch.empty(n_dst, heads, channels, dtype=h.dtype, device=h.device)
    lse = torch.empty(n_dst, heads, dtype=torch.float32, device=h.device)
    if n_dst == 0:
        return out, lse
    block_e, block_c = _blocks(channels, h.device)
    _launch(_fwd, (n_dst, heads), h.device, h, a_src, a_dst, a_src if a_edge is None else a_edge, indptr, indices,
            out, lse, heads, channels, h.shape[0], indices.numel(), *_scalars(negative_slope, dropout, seed), offset,
            DROP=dropout > 0,
            EDGE=a_edge is not None, BLOCK_E=block_e, BLOCK_C=block_c)
    return out, lse


def backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset,
             a_edge=None):
    n_src, heads, channels = h.shape
    n_dst = a_dst.shape[0]
    grad_h, grad_a_src, grad_a_dst = torch.empty_like(h), torch.empty_like(a_src), torch.empty_like(a_dst)
    # zeros: on CUDA a position outside every row (a malformed CSR, not validated there) is never written
    grad_a_edge = torch.zeros_like(a_edge) if a_edge is not None else a_src.new_empty(0, heads)
    edge = a_src if a_edge is None else a_edge
    delta = torch.empty(n_dst, heads, dtype=torch.float32, device=h.device)
    block_e, block_c = _blocks(channels, h.device)
    sc = _scalars(negative_slope, dropout, seed)
    meta = dict(DROP=dropout > 0, EDGE=a_edge is not None, BLOCK_E=block_e, BLOCK_C=block_c)
    if n_dst:
        _launch(_bwd_dst, (n_dst, heads), h.device, grad_out, h, a_src, a_dst, edge, indptr, indices, out, lse,
                delta, grad_a_dst, grad_a_edge if a_edge is not None else grad_a_dst, heads, channels, n_src,
                indices.numel(), *sc, offset, **meta)
    if n_src:
        colptr, csc_edge, csc_row = reference.transposed_index(indptr, indices, n_src)  # guarded torch ops
        _launch(_bwd_src, (n_src, heads), h.device, grad_out, h, a_src, a_dst, edge, colptr, csc_edge, csc_row,
                lse, delta, grad_h, grad_a_src, heads, channels, n_dst, *sc, offset, **meta)
    return grad_h, grad_a_src, grad_a_dst, grad_a_edge
