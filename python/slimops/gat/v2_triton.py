"""Triton kernels of the GATv2 ops (CUDA; CPU tensors under ``TRITON_INTERPRET=1``).

Forward, one program per (destination row, head): an online softmax over the row's in-edges in
blocks of ``BLOCK_E``; per block the rows ``xl[j, head, :]`` are gathered once, the pre-activation
``s = xl[j] + xr[i] (+ edge_attr[k] @ w_edge[head]^T)`` and the scores ``att . leaky(s)`` computed,
and the same rows accumulated in fp32. Saves lse = m + log(s). Backward, deterministic (no atomics):

* ``_bwd_dst``, per (destination row, head): delta = g . out, de and p = alpha * w per edge (to a
  workspace [2, E, H]), and grad_xr;
* ``_bwd_edge``, per fixed chunk of CSR positions (all heads): grad_edge_attr, and the chunk's sums
  of grad_att and grad_w_edge (added over chunks by torch, in a fixed order);
* ``_bwd_src``, per (source node, head) over a transposed index: grad_xl = sum p * g[i] + ds.

The math, the dropout hash and the notation are :mod:`slimops.gat.v2_reference`'s; the hash, leaky
ReLU and scalar set-up are the GAT op's (:mod:`slimops.gat.triton`). Without edge features (D = 0)
the edge loads are fully masked.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._triton import launch as _launch
from .reference import _edges, transposed_index
from .triton import _blocks, _dropout_w, _leaky, _scalars


@triton.jit
def _rows(ptr, r, hd, H, C, cs, mask2):
    """Rows ``ptr[r, hd, :]`` of an [N, H, C] tensor as fp32 [BE, BC]."""
    return tl.load(ptr + (r * H + hd)[:, None] * C + cs[None, :], mask=mask2, other=0.0).to(tl.float32)


@triton.jit
def _edge_term(ea_ptr, ks, emask, D, dd, dmask, w):
    """edge_attr[ks] @ w^T as fp32 [BE, BC] (zeros when D = 0: every load masked)."""
    ea = tl.load(ea_ptr + ks[:, None] * D + dd[None, :], mask=emask[:, None] & dmask[None, :], other=0.0)
    return tl.sum(ea.to(tl.float32)[:, None, :] * w[None, :, :], 2)


@triton.jit
def _w_head(w_ptr, hd, C, D, cs, cmask, dd, dmask):
    """w_edge's rows of head ``hd`` as fp32 [BC, BD]."""
    return tl.load(w_ptr + (hd * C + cs)[:, None] * D + dd[None, :], mask=cmask[:, None] & dmask[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _fwd(xl_ptr, xr_ptr, att_ptr, ea_ptr, w_ptr, indptr_ptr, indices_ptr, out_ptr, lse_ptr, H, C, D, slope, p,
         inv_keep, key_i32, offset, DROP: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
         BLOCK_D: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    key = key_i32.to(tl.uint32, bitcast=True)
    start = tl.load(indptr_ptr + i).to(tl.int64)
    end = tl.load(indptr_ptr + i + 1).to(tl.int64)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    dd = tl.arange(0, BLOCK_D)
    dmask = dd < D
    xr = tl.load(xr_ptr + (i * H + hd) * C + cs, mask=cmask, other=0.0).to(tl.float32)
    a = tl.load(att_ptr + hd * C + cs, mask=cmask, other=0.0).to(tl.float32)
    w = _w_head(w_ptr, hd, C, D, cs, cmask, dd, dmask)
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.zeros((), tl.float32)
    acc = tl.zeros((BLOCK_C,), tl.float32)
    e0 = start
    while e0 < end:  # a while loop: the interpreter cannot range() over loaded scalars
        ks = e0 + tl.arange(0, BLOCK_E).to(tl.int64)
        emask = ks < end
        j = tl.load(indices_ptr + ks, mask=emask, other=0).to(tl.int64)
        v = _rows(xl_ptr, j, hd, H, C, cs, emask[:, None] & cmask[None, :])
        pre = v + xr[None, :] + _edge_term(ea_ptr, ks, emask, D, dd, dmask, w)
        e = tl.where(emask, tl.sum(_leaky(pre, slope) * a[None, :], 1), float("-inf"))
        m_new = tl.maximum(m, tl.max(e, 0))
        scale = tl.exp(m - m_new)
        q = tl.exp(e - m_new)
        s = s * scale + tl.sum(q, 0)
        if DROP:
            q = q * _dropout_w(key, ks, offset, hd, p, inv_keep)
        acc = acc * scale + tl.sum(q[:, None] * v, 0)
        m = m_new
        e0 += BLOCK_E
    has = s > 0
    res = tl.where(has, acc / tl.where(has, s, 1.0), 0.0)
    tl.store(out_ptr + (i * H + hd) * C + cs, res.to(out_ptr.dtype.element_ty), mask=cmask)
    tl.store(lse_ptr + i * H + hd, tl.where(has, m + tl.log(tl.where(has, s, 1.0)), float("-inf")))


@triton.jit
def _bwd_dst(g_ptr, xl_ptr, xr_ptr, att_ptr, ea_ptr, w_ptr, indptr_ptr, indices_ptr, out_ptr, lse_ptr, ws_ptr,
             gxr_ptr, E, H, C, D, slope, p, inv_keep, key_i32, offset, DROP: tl.constexpr, BLOCK_E: tl.constexpr,
             BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr):
    i = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    key = key_i32.to(tl.uint32, bitcast=True)
    start = tl.load(indptr_ptr + i).to(tl.int64)
    end = tl.load(indptr_ptr + i + 1).to(tl.int64)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    dd = tl.arange(0, BLOCK_D)
    dmask = dd < D
    base = (i * H + hd) * C + cs
    gi = tl.load(g_ptr + base, mask=cmask, other=0.0).to(tl.float32)
    delta = tl.sum(gi * tl.load(out_ptr + base, mask=cmask, other=0.0).to(tl.float32), 0)
    xr = tl.load(xr_ptr + base, mask=cmask, other=0.0).to(tl.float32)
    a = tl.load(att_ptr + hd * C + cs, mask=cmask, other=0.0).to(tl.float32)
    w = _w_head(w_ptr, hd, C, D, cs, cmask, dd, dmask)
    lse = tl.load(lse_ptr + i * H + hd)
    gxr = tl.zeros((BLOCK_C,), tl.float32)
    e0 = start
    while e0 < end:
        ks = e0 + tl.arange(0, BLOCK_E).to(tl.int64)
        emask = ks < end
        j = tl.load(indices_ptr + ks, mask=emask, other=0).to(tl.int64)
        v = _rows(xl_ptr, j, hd, H, C, cs, emask[:, None] & cmask[None, :])
        pre = v + xr[None, :] + _edge_term(ea_ptr, ks, emask, D, dd, dmask, w)
        alpha = tl.where(emask, tl.exp(tl.sum(_leaky(pre, slope) * a[None, :], 1) - lse), 0.0)
        wd = _dropout_w(key, ks, offset, hd, p, inv_keep) if DROP else 1.0
        de = alpha * (wd * tl.sum(v * gi[None, :], 1) - delta)
        tl.store(ws_ptr + ks * H + hd, alpha * wd, mask=emask)
        tl.store(ws_ptr + (E + ks) * H + hd, de, mask=emask)
        gxr += tl.sum(de[:, None] * a[None, :] * tl.where(pre > 0, 1.0, slope), 0)
        e0 += BLOCK_E
    tl.store(gxr_ptr + base, gxr.to(gxr_ptr.dtype.element_ty), mask=cmask)


@triton.jit
def _bwd_edge(xl_ptr, xr_ptr, att_ptr, ea_ptr, w_ptr, row_ptr, indices_ptr, ws_ptr, gea_ptr, patt_ptr, pw_ptr, E, H,
              C, D, CHUNK, slope, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    lo = b * CHUNK
    hi = tl.minimum(lo + CHUNK, E)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    dd = tl.arange(0, BLOCK_D)
    dmask = dd < D
    hd = 0
    while hd < H:  # a while loop: the interpreter cannot range() over a runtime bound
        a = tl.load(att_ptr + hd * C + cs, mask=cmask, other=0.0).to(tl.float32)
        w = _w_head(w_ptr, hd, C, D, cs, cmask, dd, dmask)
        patt = tl.zeros((BLOCK_C,), tl.float32)
        pw = tl.zeros((BLOCK_C, BLOCK_D), tl.float32)
        k0 = lo
        while k0 < hi:
            ks = k0 + tl.arange(0, BLOCK_E).to(tl.int64)
            emask = ks < hi
            j = tl.load(indices_ptr + ks, mask=emask, other=0).to(tl.int64)
            i = tl.load(row_ptr + ks, mask=emask, other=0).to(tl.int64)
            m2 = emask[:, None] & cmask[None, :]
            pre = (_rows(xl_ptr, j, hd, H, C, cs, m2) + _rows(xr_ptr, i, hd, H, C, cs, m2)
                   + _edge_term(ea_ptr, ks, emask, D, dd, dmask, w))
            de = tl.load(ws_ptr + (E + ks) * H + hd, mask=emask, other=0.0)
            patt += tl.sum(de[:, None] * _leaky(pre, slope), 0)
            ds = de[:, None] * a[None, :] * tl.where(pre > 0, 1.0, slope)
            ea = tl.load(ea_ptr + ks[:, None] * D + dd[None, :], mask=emask[:, None] & dmask[None, :],
                         other=0.0).to(tl.float32)
            pw += tl.sum(ds[:, :, None] * ea[:, None, :], 0)
            gptr = gea_ptr + ks[:, None] * D + dd[None, :]  # fp32, this program's edges only: no race
            gmask = emask[:, None] & dmask[None, :]
            prev = tl.load(gptr, mask=gmask & (hd > 0), other=0.0)
            tl.store(gptr, prev + tl.sum(ds[:, :, None] * w[None, :, :], 1), mask=gmask)
            k0 += BLOCK_E
        tl.store(patt_ptr + (b * H + hd) * C + cs, patt, mask=cmask)
        tl.store(pw_ptr + ((b * H + hd) * C + cs)[:, None] * D + dd[None, :], pw, mask=cmask[:, None] & dmask[None, :])
        hd += 1


@triton.jit
def _bwd_src(g_ptr, xl_ptr, xr_ptr, att_ptr, ea_ptr, w_ptr, colptr_ptr, csc_edge_ptr, csc_row_ptr, ws_ptr, gxl_ptr,
             E, H, C, D, slope, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr):
    j = tl.program_id(0).to(tl.int64)
    hd = tl.program_id(1)
    start = tl.load(colptr_ptr + j)
    end = tl.load(colptr_ptr + j + 1)
    cs = tl.arange(0, BLOCK_C)
    cmask = cs < C
    dd = tl.arange(0, BLOCK_D)
    dmask = dd < D
    a = tl.load(att_ptr + hd * C + cs, mask=cmask, other=0.0).to(tl.float32)
    w = _w_head(w_ptr, hd, C, D, cs, cmask, dd, dmask)
    v = tl.load(xl_ptr + (j * H + hd) * C + cs, mask=cmask, other=0.0).to(tl.float32)
    acc = tl.zeros((BLOCK_C,), tl.float32)
    q0 = start
    while q0 < end:
        qs = q0 + tl.arange(0, BLOCK_E).to(tl.int64)
        emask = qs < end
        k = tl.load(csc_edge_ptr + qs, mask=emask, other=0).to(tl.int64)
        i = tl.load(csc_row_ptr + qs, mask=emask, other=0).to(tl.int64)
        m2 = emask[:, None] & cmask[None, :]
        gi = _rows(g_ptr, i, hd, H, C, cs, m2)
        pre = v[None, :] + _rows(xr_ptr, i, hd, H, C, cs, m2) + _edge_term(ea_ptr, k, emask, D, dd, dmask, w)
        pk = tl.load(ws_ptr + k * H + hd, mask=emask, other=0.0)
        de = tl.load(ws_ptr + (E + k) * H + hd, mask=emask, other=0.0)
        acc += tl.sum(pk[:, None] * gi + de[:, None] * a[None, :] * tl.where(pre > 0, 1.0, slope), 0)
        q0 += BLOCK_E
    tl.store(gxl_ptr + (j * H + hd) * C + cs, acc.to(gxl_ptr.dtype.element_ty), mask=cmask)


# ----------------------------------------------------------------------------- host side


def _sizes(xl, edge_attr):
    block_e, block_c = _blocks(xl.shape[2], xl.device)
    return dict(BLOCK_E=block_e, BLOCK_C=block_c, BLOCK_D=triton.next_power_of_2(max(edge_attr.shape[1], 1)))


def forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
    n_dst, heads, channels = xr.shape
    out = torch.empty(n_dst, heads, channels, dtype=xl.dtype, device=xl.device)
    lse = torch.empty(n_dst, heads, dtype=torch.float32, device=xl.device)
    if n_dst:
        _launch(_fwd, (n_dst, heads), xl.device, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, heads,
                channels, edge_attr.shape[1], *_scalars(negative_slope, dropout, seed), offset, DROP=dropout > 0,
                **_sizes(xl, edge_attr))
    return out, lse


def backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope, dropout, seed,
             offset):
    n_src, heads, channels = xl.shape
    n_dst, n_edges, edge_dim = xr.shape[0], indices.numel(), edge_attr.shape[1]
    dev = xl.device
    grad_xl, grad_xr = torch.empty_like(xl), torch.empty_like(xr)
    ws = torch.empty(2, n_edges, heads, dtype=torch.float32, device=dev)
    sizes = _sizes(xl, edge_attr)
    slope, p, inv_keep, key = _scalars(negative_slope, dropout, seed)
    if n_dst:
        _launch(_bwd_dst, (n_dst, heads), dev, grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse,
                ws, grad_xr, n_edges, heads, channels, edge_dim, slope, p, inv_keep, key, offset, DROP=dropout > 0,
                **sizes)
    chunk = 1024 if dev.type == "cuda" else 64  # CSR positions per partial sum (fixed: deterministic)
    n_chunks = (n_edges + chunk - 1) // chunk
    gea = torch.empty(n_edges, edge_dim, dtype=torch.float32, device=dev)
    patt = torch.zeros(n_chunks, heads, channels, dtype=torch.float32, device=dev)
    pw = torch.zeros(n_chunks, heads * channels, edge_dim, dtype=torch.float32, device=dev)
    if n_chunks:
        row = _edges(indptr, indices, n_dst)[0]
        _launch(_bwd_edge, (n_chunks,), dev, xl, xr, att, edge_attr, w_edge, row, indices, ws, gea, patt, pw, n_edges,
                heads, channels, edge_dim, chunk, slope, **sizes)
    if n_src:
        colptr, csc_edge, csc_row = transposed_index(indptr, indices, n_src)
        _launch(_bwd_src, (n_src, heads), dev, grad_out, xl, xr, att, edge_attr, w_edge, colptr, csc_edge, csc_row,
                ws, grad_xl, n_edges, heads, channels, edge_dim, slope, **sizes)
    return (grad_xl, grad_xr, patt.sum(0).to(att.dtype), gea.to(edge_attr.dtype), pw.sum(0).to(w_edge.dtype))
