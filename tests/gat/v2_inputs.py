"""Random inputs of the GATv2 op for the tests, and running it forward and backward."""

from __future__ import annotations

import torch

import slimops

# (atol, rtol) of the forward output and of the gradients, by dtype: both sides compute in fp32 from the
# same inputs; they differ in summation order and (bf16 / fp16) in the final rounding.
TOL = {torch.float32: ((5e-6, 5e-5), (2e-5, 2e-4)),
       torch.bfloat16: ((1e-2, 1e-2), (3e-2, 3e-2)),
       torch.float16: ((2e-3, 2e-3), (6e-3, 6e-3))}
GRADS = ("grad_xl", "grad_xr", "grad_att", "grad_edge_attr", "grad_w_edge")


def v2_inputs(n_src, n_dst, heads, channels, n_edges, edge_dim, dtype=torch.float32, seed=0, scale=1.0):
    """(xl, xr, att, edge_attr, w_edge): features ~ N(0, scale^2), att and w_edge of a trained layer's size."""
    g = torch.Generator().manual_seed(seed + 2000)
    xl = scale * torch.randn(n_src, heads, channels, generator=g)
    xr = scale * torch.randn(n_dst, heads, channels, generator=g)
    att = torch.randn(heads, channels, generator=g) / channels ** 0.5
    edge_attr = torch.randn(n_edges, edge_dim, generator=g)
    w_edge = torch.randn(heads * channels, edge_dim, generator=g) / max(edge_dim, 1) ** 0.5
    return tuple(t.to(dtype) for t in (xl, xr, att, edge_attr, w_edge))


def run(backend, args, p=0.0, seed=0, offset=0, slope=0.2, grad=None):
    """(out, lse, grads) of gatv2_forward / gatv2_backward on ``args`` = (xl, xr, att, ea, w, indptr, indices)."""
    with slimops.use_backend(backend):
        out, lse = torch.ops.slimops.gatv2_forward(*args, slope, p, seed, offset)
        if grad is None:
            grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.dtype).to(out.device)
        grads = torch.ops.slimops.gatv2_backward(grad, *args, out, lse, slope, p, seed, offset)
    return out, lse, grads
