"""Pure-PyTorch reference of fused GAT attention: the test oracle and the fallback kernel.

The graph is in CSR by destination: the in-edges of destination ``i`` are
``indices[indptr[i]:indptr[i+1]]`` (source node ids). For every edge ``(j -> i)``
at CSR position ``k`` and head ``h``::

    z[k,h]   = a_src[j,h] + a_dst[i,h] (+ a_edge[k,h], an optional per-edge score in CSR order)
    e[k,h]   = leaky_relu(z[k,h], negative_slope)
    lse[i,h] = log(sum_{k in row i} exp(e[k,h]))             (-inf for a row with no in-edge)
    alpha    = exp(e[k,h] - lse[i,h])                         (softmax over the in-edges of i)
    w[k,h]   = keep(seed, offset + k, h) / (1 - dropout)      (1 without dropout)
    out[i,h,:] = sum_{k kept} alpha[k,h] * w[k,h] * h_feat[j,h,:]   (zeros for a row with no in-edge)

Forward saves only ``lse`` (N_dst x H, fp32) besides its inputs and output; the
backward recomputes alpha from it. With ``g = grad_out`` and ``D[i,h] = g[i,h,:] . out[i,h,:]``::

    de[k,h]      = alpha[k,h] * ([kept] w[k,h] * (g[i,h,:] . h_feat[j,h,:]) - D[i,h])
    ds[k,h]      = de[k,h] * (1 if z[k,h] > 0 else negative_slope)
    grad_a_dst[i] += ds[k];  grad_a_src[j] += ds[k];  grad_a_edge[k] = ds[k]
    grad_h[j,h,:] += [kept] alpha[k,h] * w[k,h] * g[i,h,:]

An edge that dropout drops (w = 0) contributes nothing to ``out`` and ``grad_h`` and
its feature row is not read (a NaN there does not propagate); everything else is
IEEE arithmetic, so a NaN or +-Inf score, or a row whose scores are all -inf, gives
NaN for that row and head (out and lse), as softmax does.

**Partial aggregation.** Run on the CSR of the edges from one block of source
nodes (``indices`` local to that block), the forward returns the block's
normalised partial output and its log-sum-exp; :func:`merge` combines partials
exactly as an online softmax does. The backward, given the *merged* output, its
gradient and the merged log-sum-exp, returns the exact gradients for that block,
so a sequence of partials needs only one block at a time for backward.

**Dropout** is a counter-based hash (no state, nothing stored): the edge at CSR
position ``k`` of head ``h`` is kept when ``u >= dropout`` with
``u = (mix(seed, offset + k, h) >> 8) * 2^-24``; :func:`dropout_hash` defines
``mix`` from murmur3's 32-bit finaliser. Every backend computes the same bits.
All arithmetic is fp32 whatever the feature dtype; outputs are cast back to it.
"""

from __future__ import annotations

import torch

M32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9
C1, C2 = 0x85EBCA6B, 0xC2B2AE35


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for int64 tensors holding uint32 values, without int64 overflow."""
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & M32


def fmix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's 32-bit finaliser on int64 tensors holding uint32 values."""
    x = x ^ (x >> 16)
    x = _mul32(x, C1)
    x = x ^ (x >> 13)
    x = _mul32(x, C2)
    return x ^ (x >> 16)


def fmix32_int(x: int) -> int:
    x &= M32
    x ^= x >> 16
    x = (x * C1) & M32
    x ^= x >> 13
    x = (x * C2) & M32
    return x ^ (x >> 16)


def seed_key(seed: int) -> int:
    """The per-call key every backend derives from the seed: fmix32((seed mod 2^32) ^ GOLDEN)."""
    return fmix32_int((seed & M32) ^ GOLDEN)


def dropout_hash(seed: int, offset: int, num_edges: int, heads: int, device=None) -> torch.Tensor:
    """uint32 hash (as int64) of (seed, offset + edge, head), shape [num_edges, heads]."""
    c = offset + torch.arange(num_edges, dtype=torch.int64, device=device)
    t = fmix32(torch.full_like(c, seed_key(seed)) ^ (c & M32))
    t = fmix32(t ^ ((c >> 32) & M32))
    return fmix32(t[:, None] ^ torch.arange(heads, dtype=torch.int64, device=device)[None, :])


def dropout_weights(seed: int, offset: int, num_edges: int, heads: int, p: float, device=None) -> torch.Tensor:
    """w[k, h] = keep / (1 - p) (fp32), the factor every backend applies to alpha."""
    u = (dropout_hash(seed, offset, num_edges, heads, device) >> 8).to(torch.float32) * (2.0 ** -24)
    inv_keep = torch.tensor(1.0 / (1.0 - p), dtype=torch.float32)  # double 1/(1-p), rounded once
    return torch.where(u >= p, inv_keep.to(u.device), torch.zeros((), dtype=torch.float32, device=u.device))


def check_csr_values(indptr: torch.Tensor, indices: torch.Tensor, n_src: int) -> None:
    """Data-dependent CSR checks (CPU tensors: they read the values)."""
    n_edges = indices.numel()
    if int(indptr[0]) != 0:
        raise ValueError(f"malformed CSR: indptr[0] must be 0, got {int(indptr[0])}")
    if int(indptr[-1]) != n_edges:
        raise ValueError(f"malformed CSR: indptr[-1] must equal len(indices) = {n_edges}, got {int(indptr[-1])}")
    if indptr.numel() > 1 and bool((indptr[1:] < indptr[:-1]).any()):
        bad = int((indptr[1:] < indptr[:-1]).nonzero()[0])
        raise ValueError(f"malformed CSR: indptr must be non-decreasing, but indptr[{bad + 1}] < indptr[{bad}]")
    if n_edges and (int(indices.min()) < 0 or int(indices.max()) >= n_src):
        raise ValueError(f"malformed CSR: indices must lie in [0, {n_src}) (the number of source nodes), "
                         f"got values in [{int(indices.min())}, {int(indices.max())}]")


def _edges(indptr: torch.Tensor, indices: torch.Tensor, n_dst: int):
    deg = (indptr[1:] - indptr[:-1]).long()
    row = torch.repeat_interleave(torch.arange(n_dst, device=indices.device), deg, output_size=indices.numel())
    return row, indices.long()


def _logits(a_src, a_dst, row, col, negative_slope, a_edge=None):
    z = a_src.float()[col] + a_dst.float()[row]
    if a_edge is not None:
        z = z + a_edge.float()
    return z, torch.nn.functional.leaky_relu(z, negative_slope)


def _keep(w, x):
    """x where the edge is kept (w > 0), else exactly 0 (a dropped edge's row is not read)."""
    return x if w is None else torch.where((w > 0).view(w.shape + (1,) * (x.dim() - w.dim())), x, 0.0)


def forward(h, a_src, a_dst, indptr, indices, negative_slope: float, dropout: float, seed: int, offset: int,
            a_edge=None):
    """Returns (out [N_dst, H, C] in h's dtype, lse [N_dst, H] fp32)."""
    n_dst, heads = a_dst.shape
    row, col = _edges(indptr, indices, n_dst)
    _, e = _logits(a_src, a_dst, row, col, negative_slope, a_edge)
    idx = row[:, None].expand_as(e)
    m = torch.full((n_dst, heads), float("-inf"), device=e.device).scatter_reduce(0, idx, e, "amax")
    p = torch.exp(e - m[row])
    s = torch.zeros(n_dst, heads, device=e.device).index_add_(0, row, p)
    lse = m + torch.log(s)
    alpha = p / s[row]
    w = dropout_weights(seed, offset, e.shape[0], heads, dropout, e.device) if dropout > 0 else None
    if w is not None:
        alpha = alpha * w
    out = torch.zeros(n_dst, heads, h.shape[2], device=e.device)
    out.index_add_(0, row, _keep(w, alpha[:, :, None] * h.float()[col]))
    return out.to(h.dtype), lse


def backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope: float, dropout: float,
             seed: int, offset: int, a_edge=None):
    """Returns (grad_h, grad_a_src, grad_a_dst, grad_a_edge) in the dtypes of h, a_src, a_dst, a_edge;
    grad_a_edge is empty ([0, H]) without ``a_edge``."""
    n_dst, heads = a_dst.shape
    row, col = _edges(indptr, indices, n_dst)
    z, e = _logits(a_src, a_dst, row, col, negative_slope, a_edge)
    alpha = torch.exp(e - lse[row])
    w = dropout_weights(seed, offset, e.shape[0], heads, dropout, e.device) if dropout > 0 else None
    g = grad_out.float()
    d = (g * out.float()).sum(-1)
    gh = _keep(w, (g[row] * h.float()[col]).sum(-1))
    aw = alpha if w is None else alpha * w
    de = alpha * ((gh if w is None else w * gh) - d[row])
    ds = de * torch.where(z > 0, 1.0, negative_slope)
    grad_a_dst = torch.zeros(n_dst, heads, device=e.device).index_add_(0, row, ds)
    grad_a_src = torch.zeros(a_src.shape, device=e.device).index_add_(0, col, ds)
    grad_h = torch.zeros(h.shape, device=e.device).index_add_(0, col, _keep(w, aw[:, :, None] * g[row]))
    grad_a_edge = ds.to(a_edge.dtype) if a_edge is not None else a_src.new_empty(0, heads)
    return grad_h.to(h.dtype), grad_a_src.to(a_src.dtype), grad_a_dst.to(a_dst.dtype), grad_a_edge


def transposed_index(indptr, indices, n_src):
    """(colptr [n_src + 1] int64, csc_edge [E] (indices' dtype), csc_row [E] int64): the CSR positions
    grouped by source (stable) and their destination rows.

    Built with torch ops that read every value guardedly, so a malformed CSR on CUDA (where nothing
    validated it) never trips a device-side assert: a source id outside [0, n_src) goes to a bucket past
    ``colptr[n_src]`` (never visited), ``indptr`` is clamped to [0, E] and made non-decreasing first,
    and a position outside every row gets row ``n_dst`` (the kernels skip it). On a well-formed CSR this
    is the exact transpose. The rows are int64 whatever the index dtype (N_dst may exceed 2^31).
    """
    n_edges = indices.numel()
    src = indices.long()
    src = torch.where((src >= 0) & (src < n_src), src, n_src)
    csc_edge = torch.argsort(src, stable=True)
    counts = torch.zeros(n_src + 2, dtype=torch.int64, device=indices.device)
    counts.index_add_(0, src + 1, torch.ones_like(src))
    colptr = counts[:n_src + 1].cumsum(0)
    bounds = torch.cummax(indptr[1:].long().clamp(0, n_edges), 0).values
    row = torch.searchsorted(bounds, torch.arange(n_edges, device=indices.device), right=True)
    return colptr, csc_edge.to(indices.dtype), row[csc_edge]


def merge(outs: torch.Tensor, lses: torch.Tensor):
    """Combine P partials (outs [P, N, H, C], lses [P, N, H] fp32) exactly as an online softmax does:
    with m = max_p lse_p and w_p = exp(lse_p - m), out = sum_p w_p out_p / sum_p w_p and lse = m + log(sum_p w_p).

    Normalising by the sum of the weights, not by exp(lse_p - lse), keeps scores near the float maximum
    right: there m + log(2) rounds back to m, and exp(lse_p - lse) would give each of two equal partials
    weight 1. A row without edges in every partial (all lse -inf) gets out 0 and lse -inf, as the forward.
    Limit: a partial's fp32 lse keeps log(s) only while ulp(m) is smaller; at logits beyond about 2^24 the
    partials' edge counts are lost (two partials of 2 and 1 equal logits near the float maximum merge to
    weights 1/2, 1/2 instead of 2/3, 1/3)."""
    m = lses.amax(0)
    wts = torch.where(lses == float("-inf"), 0.0, torch.exp(lses - m.unsqueeze(0)))
    total = wts.sum(0)
    out = (wts.unsqueeze(-1) * outs.float()).sum(0)
    out = torch.where(total.unsqueeze(-1) > 0, out / total.unsqueeze(-1), out)
    return out.to(outs.dtype), m + torch.log(total)


def scores(h, att):
    """s[k, n, h] = sum_c h[n, h, c] * att[k, h, c], in fp32, returned in h's dtype."""
    return (h.float().unsqueeze(0) * att.float().unsqueeze(1)).sum(-1).to(h.dtype)


def scores_backward(grad, h, att, grad_h=None):
    """(grad_h + sum_k grad[k, n, h] att[k, h, :], sum_n grad[k, n, h] h[n, h, :]) in the dtypes of h and att."""
    g = grad.float().unsqueeze(-1)                          # [K, N, H, 1]
    gh = (g * att.float().unsqueeze(1)).sum(0)
    if grad_h is not None:
        gh = gh + grad_h.float()
    return gh.to(h.dtype), (g * h.float().unsqueeze(0)).sum(1).to(att.dtype)
