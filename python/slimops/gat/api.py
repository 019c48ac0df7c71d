"""Python API of the GAT family over the ``torch.ops.slimops.gat_*`` ops."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from .._backend import current_backend, use_backend
from . import eager


def draw_seed() -> int:
    """A dropout seed drawn once from torch's default (CPU) generator: reproducible under
    ``torch.manual_seed``, and no CUDA synchronisation."""
    return int(torch.randint(0, 2**31 - 1, (1,), dtype=torch.int64).item())


def index_dtype_for(n_edges: int, n_src: int) -> torch.dtype:
    """int32 when every value the indices hold fits (CSR positions < E, source ids < N_src), else int64.
    Destination rows are never stored in the index dtype (the kernels keep them in int64)."""
    return torch.int32 if max(n_edges, n_src) < 2**31 - 1 else torch.int64


def csr_from_edge_index(edge_index: torch.Tensor, num_nodes: int, num_src: Optional[int] = None,
                        index_dtype: Optional[torch.dtype] = None, return_perm: bool = False):
    """CSR by destination of a PyG-style ``edge_index`` [2, E] (row 0 source, row 1 destination).

    Checks the values once (a host synchronisation on CUDA): every id in [0, num_nodes)
    (sources in [0, num_src) when given). Edges of one destination keep their order
    (stable sort); duplicates are kept. Returns ``(indptr [num_nodes + 1], indices [E])``,
    int32 when every value fits (:func:`index_dtype_for`, or ``index_dtype``), else int64;
    with ``return_perm`` also ``perm`` [E] int64, the edge of each CSR position.
    """
    if not isinstance(edge_index, torch.Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {list(edge_index.shape)}")
    if edge_index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"edge_index must be int64 or int32, got {edge_index.dtype}")
    num_src = num_nodes if num_src is None else num_src
    src, dst = edge_index[0].long(), edge_index[1].long()
    n_edges = src.numel()
    if n_edges:
        lo = torch.stack([src.min(), dst.min()]).tolist()
        hi = torch.stack([src.max(), dst.max()]).tolist()
        if min(lo) < 0 or hi[0] >= num_src or hi[1] >= num_nodes:
            raise ValueError(f"edge_index has node ids outside the graph: sources in [{lo[0]}, {hi[0]}] "
                             f"(must be < {num_src}), destinations in [{lo[1]}, {hi[1]}] (must be < {num_nodes})")
    perm = torch.argsort(dst, stable=True)
    indices = src[perm]
    indptr = torch.zeros(num_nodes + 1, dtype=torch.int64, device=src.device)
    torch.cumsum(torch.bincount(dst, minlength=num_nodes), 0, out=indptr[1:])
    if index_dtype is None:
        index_dtype = index_dtype_for(n_edges, num_src)
    csr = (indptr.to(index_dtype), indices.to(index_dtype))
    return (*csr, perm) if return_perm else csr


def gat_attention(h, a_src, a_dst, indptr, indices, negative_slope: float = 0.2, dropout: float = 0.0,
                  training: bool = True, seed: Optional[int] = None, offset: int = 0, a_edge=None,
                  return_lse: bool = False):
    """out [N_dst, H, C] = softmax-attention aggregation of ``h`` [N_src, H, C] over the CSR graph.

    Differentiable in ``h``, ``a_src``, ``a_dst`` and ``a_edge`` (an optional per-edge score [E, H] in
    CSR order, added to the logit); saves only a per-node log-sum-exp for backward. Attention dropout
    applies when ``training`` and ``dropout > 0``; its seed is drawn from torch's generator unless
    given. ``return_lse``: also return the lse [N_dst, H] (fp32, not differentiable). This is
    ``torch.ops.slimops.gat_forward``; in plain eager mode on the CPU it skips the dispatcher (``eager.py``).
    """
    p = float(dropout) if training else 0.0
    if p > 0 and seed is None:
        seed = draw_seed()
    out, lse = eager.attention(h, a_src, a_dst, indptr, indices, float(negative_slope), p, int(seed or 0),
                               int(offset), a_edge)
    return (out, lse) if return_lse else out


def node_scores(h, att):
    """s [K, N, H] = (h [N, H, C] * att[k]).sum(-1) for each of K attention vectors ``att`` [K, H, C]
    (``torch.ops.slimops.gat_scores``; FusedGATConv's a_src and a_dst in one pass over h)."""
    return eager.scores(h, att)


def partial_forward(h, a_src, a_dst, indptr, indices, negative_slope: float = 0.2, dropout: float = 0.0,
                    seed: int = 0, offset: int = 0, a_edge=None):
    """Aggregation over one block of source nodes: ``(partial out, lse)``; ``indices`` are local to
    the block (``h``, ``a_src`` hold only its rows; ``a_edge``, when given, the block's edges in its CSR
    order). Rows without an edge in the block give zeros and lse = -inf. Give each block its own range
    of dropout counters (``offset``)."""
    return torch.ops.slimops.gat_forward(h, a_src, a_dst, indptr, indices, float(negative_slope), float(dropout),
                                         int(seed), int(offset), a_edge)


def merge(outs: Sequence[torch.Tensor], lses: Sequence[torch.Tensor]):
    """Combine partial ``(out, lse)`` pairs exactly as an online softmax does: ``(out, lse)`` (exact up to
    the fp32 precision of the partials' lse: ``reference.merge`` says where that ends)."""
    return torch.ops.slimops.gat_merge(torch.stack(list(outs)), torch.stack(list(lses)))


def partial_backward(grad_out, out, lse, h, a_src, a_dst, indptr, indices, negative_slope: float = 0.2,
                     dropout: float = 0.0, seed: int = 0, offset: int = 0, a_edge=None):
    """Gradients for one block given the *merged* output, its gradient and the merged lse:
    ``(grad_h_block, grad_a_src_block, grad_a_dst contribution)``, and ``grad_a_edge_block`` fourth
    when the block has ``a_edge``."""
    grads = torch.ops.slimops.gat_backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse,
                                           float(negative_slope), float(dropout), int(seed), int(offset), a_edge)
    return tuple(grads) if a_edge is not None else tuple(grads[:3])


class _Sequential(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a_dst, negative_slope, dropout, seed, offsets, *flat):
        out = lse = None
        for b in range(len(flat) // 4):
            h, a_src, indptr, indices = flat[4 * b:4 * b + 4]
            o, l = partial_forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offsets[b])
            out, lse = (o, l) if out is None else merge([out, o], [lse, l])
        ctx.save_for_backward(a_dst, out, lse, *flat)
        ctx.args = (negative_slope, dropout, seed, offsets)
        ctx.backend = current_backend()
        return out

    @staticmethod
    def backward(ctx, grad_out):
        a_dst, out, lse, *flat = ctx.saved_tensors
        negative_slope, dropout, seed, offsets = ctx.args
        grad_out = grad_out.contiguous()
        with use_backend(ctx.backend):
            return _Sequential._backward_blocks(flat, grad_out, out, lse, a_dst, negative_slope, dropout, seed,
                                                offsets)

    @staticmethod
    def _backward_blocks(flat, grad_out, out, lse, a_dst, negative_slope, dropout, seed, offsets):
        grads, grad_a_dst = [], None
        for b in range(len(flat) // 4):
            h, a_src, indptr, indices = flat[4 * b:4 * b + 4]
            gh, gs, gd = partial_backward(grad_out, out, lse, h, a_src, a_dst, indptr, indices, negative_slope,
                                          dropout, seed, offsets[b])
            grad_a_dst = gd if grad_a_dst is None else grad_a_dst + gd
            grads += [gh, gs, None, None]
        return (grad_a_dst, None, None, None, None, *grads)


def sequential_aggregate(blocks, a_dst, negative_slope: float = 0.2, dropout: float = 0.0,
                         seed: Optional[int] = None, offset: int = 0) -> torch.Tensor:
    """Differentiable aggregation over source blocks ``[(h_b, a_src_b, indptr_b, indices_b), ...]``,
    one block at a time forward and backward (SAR). Equals :func:`gat_attention` on the whole
    graph without dropout; with dropout, block ``b`` uses counters from ``offset + edges before b``."""
    if dropout > 0 and seed is None:
        seed = draw_seed()
    offsets, flat, start = [], [], offset
    for h, a_src, indptr, indices in blocks:
        offsets.append(start)
        start += indices.numel()
        flat += [h, a_src, indptr, indices]
    return _Sequential.apply(a_dst, float(negative_slope), float(dropout), int(seed or 0), tuple(offsets), *flat)


class _SoftmaxFromLse(torch.autograd.Function):
    """alpha[k] = exp(e[k] - lse[row[k]]) with lse the forward's log-sum-exp of row k: the row softmax of e,
    read from the saved statistics instead of recomputed; backward is the softmax's,
    grad_e = alpha * (g - sum_row(alpha * g))."""

    @staticmethod
    def forward(ctx, e, lse, row):
        alpha = torch.exp(e.float() - lse[row])
        ctx.save_for_backward(alpha, row)
        ctx.n_rows, ctx.dtype = lse.shape[0], e.dtype
        return alpha.to(e.dtype)

    @staticmethod
    def backward(ctx, grad):
        alpha, row = ctx.saved_tensors
        ag = alpha * grad.float()
        total = torch.zeros(ctx.n_rows, alpha.shape[1], device=alpha.device).index_add_(0, row, ag)
        return (ag - alpha * total[row]).to(ctx.dtype), None, None


def attention_weights(a_src, a_dst, indptr, indices, lse, negative_slope: float = 0.2, a_edge=None,
                      dropout: float = 0.0, seed: int = 0, offset: int = 0) -> torch.Tensor:
    """alpha [E, H] in CSR order, as the forward with the same arguments used it: the softmax of each
    edge's score over its destination's in-edges, from the forward's ``lse``, times the dropout factor
    (keep / (1 - p), the forward's mask, replayed from ``seed`` and ``offset``). Differentiable in
    ``a_src``, ``a_dst`` and ``a_edge``. O(E * H): call it only when the weights are wanted."""
    from .reference import dropout_weights

    n_dst, heads = lse.shape
    row = torch.repeat_interleave(torch.arange(n_dst, device=indices.device), (indptr[1:] - indptr[:-1]).long(),
                                  output_size=indices.numel())
    z = a_src[indices.long()] + a_dst[row]
    if a_edge is not None:
        z = z + a_edge
    alpha = _SoftmaxFromLse.apply(torch.nn.functional.leaky_relu(z, negative_slope), lse, row)
    if dropout > 0:
        alpha = alpha * dropout_weights(seed, offset, indices.numel(), heads, dropout, alpha.device).to(alpha.dtype)
    return alpha
