"""Pure-PyTorch reference of fused GATv2 attention (Brody et al.): the test oracle and the fallback kernel.

The graph is in CSR by destination, as for the GAT op (:mod:`slimops.gat.reference`). For the edge
``(j -> i)`` at CSR position ``k``, head ``h`` and channel ``c``::

    s[k,h,c]  = xl[j,h,c] + xr[i,h,c] + ee[k,h,c]       ee[k] = (w_edge @ edge_attr[k]).view(H, C)
    e[k,h]    = sum_c att[h,c] * leaky_relu(s[k,h,c])
    lse[i,h]  = log(sum_{k in row i} exp(e[k,h]))        (-inf for a row with no in-edge)
    alpha     = exp(e[k,h] - lse[i,h]);   p[k,h] = alpha[k,h] * w[k,h]   (w: the GAT op's dropout factor)
    out[i,h,:] = sum_k p[k,h] * xl[j,h,:]

``xl`` is PyG's ``lin_l(x)`` (sources, also the message), ``xr`` its ``lin_r(x)`` (destinations),
``edge_attr`` [E, D] is in CSR order and ``w_edge`` [H*C, D] is ``lin_edge.weight`` (D = 0: no edge
term). Forward keeps only ``lse`` (N_dst x H, fp32) besides its inputs and output. Backward, with
``g = grad_out`` and ``Dl[i,h] = g[i,h,:] . out[i,h,:]``::

    de[k,h]    = alpha[k,h] * (w[k,h] * (g[i,h,:] . xl[j,h,:]) - Dl[i,h])
    ds[k,h,c]  = de[k,h] * att[h,c] * (1 if s[k,h,c] > 0 else negative_slope)
    grad_xr[i] += ds[k];   grad_xl[j] += p[k] * g[i] + ds[k];   grad_att[h,c] += de[k,h] * leaky_relu(s[k,h,c])
    grad_edge_attr[k] = w_edge^T ds[k];   grad_w_edge += ds[k] (outer) edge_attr[k]

Partials merge as the GAT op's do (the same ``(out, lse)`` statistics): :func:`slimops.gat.merge`.
All arithmetic is fp32 whatever the dtype; outputs are cast back to it. This reference keeps
E x H x C tensors (it is the oracle); the kernels never do.
"""

from __future__ import annotations

import torch

from .reference import _edges, dropout_weights


def _scores(xl, xr, att, edge_attr, w_edge, row, col, negative_slope):
    """(s [E, H, C], e [E, H]) in fp32."""
    heads, channels = att.shape
    s = xl.float()[col] + xr.float()[row]
    if edge_attr.shape[1] > 0:
        s = s + (edge_attr.float() @ w_edge.float().t()).view(-1, heads, channels)
    e = (torch.nn.functional.leaky_relu(s, negative_slope) * att.float()).sum(-1)
    return s, e


def forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope: float, dropout: float, seed: int,
            offset: int):
    """Returns (out [N_dst, H, C] in xl's dtype, lse [N_dst, H] fp32)."""
    n_dst, heads = xr.shape[0], xr.shape[1]
    row, col = _edges(indptr, indices, n_dst)
    _, e = _scores(xl, xr, att, edge_attr, w_edge, row, col, negative_slope)
    idx = row[:, None].expand_as(e)
    m = torch.full((n_dst, heads), float("-inf"), device=e.device).scatter_reduce(0, idx, e, "amax")
    p = torch.exp(e - m[row])
    s = torch.zeros(n_dst, heads, device=e.device).index_add_(0, row, p)
    lse = m + torch.log(s)
    alpha = p / s[row]
    if dropout > 0:
        alpha = alpha * dropout_weights(seed, offset, e.shape[0], heads, dropout, e.device)
    out = torch.zeros(n_dst, heads, xl.shape[2], device=e.device)
    out.index_add_(0, row, alpha[:, :, None] * xl.float()[col])
    return out.to(xl.dtype), lse


def backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope: float,
             dropout: float, seed: int, offset: int):
    """Returns (grad_xl, grad_xr, grad_att, grad_edge_attr, grad_w_edge), each in its input's dtype."""
    n_dst, heads = xr.shape[0], xr.shape[1]
    row, col = _edges(indptr, indices, n_dst)
    s, e = _scores(xl, xr, att, edge_attr, w_edge, row, col, negative_slope)
    alpha = torch.exp(e - lse[row])
    w = dropout_weights(seed, offset, e.shape[0], heads, dropout, e.device) if dropout > 0 else None
    g = grad_out.float()
    d = (g * out.float()).sum(-1)
    gx = (g[row] * xl.float()[col]).sum(-1)
    p = alpha if w is None else alpha * w
    de = alpha * ((gx if w is None else w * gx) - d[row])
    ds = de[:, :, None] * att.float() * torch.where(s > 0, 1.0, negative_slope)
    grad_xr = torch.zeros(xr.shape, device=e.device).index_add_(0, row, ds)
    grad_xl = torch.zeros(xl.shape, device=e.device).index_add_(0, col, p[:, :, None] * g[row] + ds)
    grad_att = (de[:, :, None] * torch.nn.functional.leaky_relu(s, negative_slope)).sum(0)
    ds2 = ds.reshape(ds.shape[0], heads * att.shape[1])
    grad_edge_attr = ds2 @ w_edge.float()
    grad_w_edge = ds2.t() @ edge_attr.float()
    return (grad_xl.to(xl.dtype), grad_xr.to(xr.dtype), grad_att.to(att.dtype), grad_edge_attr.to(edge_attr.dtype),
            grad_w_edge.to(w_edge.dtype))
