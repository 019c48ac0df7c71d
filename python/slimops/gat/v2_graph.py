"""The graph side of FusedGATv2Conv: self loops as PyG treats them, the CSR built once per graph, and the
edge features gathered into CSR order on every call (with PyG's ``fill_value`` for the loops' features)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Union

import torch

from .api import csr_from_edge_index

FILL_REDUCTIONS = ("add", "sum", "mean", "min", "max", "mul")


def check_fill_value(fill_value) -> None:
    """PyG's choices: a float, a tensor, or the name of a reduction over each node's in-edges."""
    ok = isinstance(fill_value, (int, float, torch.Tensor)) and not isinstance(fill_value, bool)
    if not ok and fill_value not in FILL_REDUCTIONS:
        raise ValueError(f"fill_value must be a float, a tensor or one of {FILL_REDUCTIONS}, got {fill_value!r}")


def loop_attr(edge_attr: torch.Tensor, dst: torch.Tensor, num_loops: int, n_dst: int,
              fill_value: Union[float, torch.Tensor, str]) -> torch.Tensor:
    """Features of the self loops of nodes ``0 .. num_loops - 1``, as PyG's ``add_self_loops`` makes them:
    ``fill_value`` itself, or the reduction of the features of each node's in-edges (``dst`` their
    destinations; nodes without an in-edge get 0, or 1 for ``"mul"``). Differentiable in ``edge_attr``."""
    size = (num_loops, *edge_attr.shape[1:])
    if isinstance(fill_value, torch.Tensor):
        t = fill_value.to(edge_attr.device, edge_attr.dtype)
        return (t if t.dim() == edge_attr.dim() else t.unsqueeze(0)).expand(size).contiguous()
    if not isinstance(fill_value, str):
        return edge_attr.new_full(size, float(fill_value))
    shape = (n_dst, *edge_attr.shape[1:])
    idx = dst.view(-1, *([1] * (edge_attr.dim() - 1))).expand_as(edge_attr)
    if fill_value in ("add", "sum", "mean"):
        out = edge_attr.new_zeros(shape).scatter_add(0, idx, edge_attr)
        if fill_value == "mean":
            count = torch.bincount(dst, minlength=n_dst).clamp_min(1).to(edge_attr.dtype)
            out = out / count.view(-1, *([1] * (edge_attr.dim() - 1)))
    elif fill_value == "mul":
        out = edge_attr.new_ones(shape).scatter_reduce(0, idx, edge_attr, "prod", include_self=True)
    else:  # min / max: nodes without an in-edge keep 0
        out = edge_attr.new_zeros(shape).scatter_reduce(0, idx, edge_attr, "a" + fill_value, include_self=False)
    return out[:num_loops]


@dataclasses.dataclass
class Graph:
    """One graph as the layer sees it. ``indptr``/``indices``: CSR by destination of the edges after self
    loops are handled; ``perm``: CSR position -> position in PyG's edge order (the kept input edges, then
    the loops); ``kept``: ids of the kept input edges (None: all kept, no loops added)."""

    edge_index: torch.Tensor  # PyG's order: the kept input edges, then the loops
    indptr: torch.Tensor
    indices: torch.Tensor
    perm: torch.Tensor
    kept: Optional[torch.Tensor]
    num_loops: int
    n_dst: int

    def edge_features(self, edge_attr: torch.Tensor, num_input_edges: int, fill_value) -> torch.Tensor:
        """``edge_attr`` [E_in, D] (or [E_in]) -> [E, D] in CSR order, the loops' rows from ``fill_value``."""
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.dim() != 2 or edge_attr.shape[0] != num_input_edges:
            raise ValueError(f"edge_attr must have shape [E, edge_dim] (or [E]) with E = {num_input_edges} edges "
                             f"(edge_index's columns), got {list(edge_attr.shape)}")
        if self.kept is not None:
            kept_attr = edge_attr[self.kept]
            dst = self.edge_index[1, :self.kept.numel()]
            loops = loop_attr(kept_attr, dst, self.num_loops, self.n_dst, fill_value)
            edge_attr = torch.cat([kept_attr, loops])
        return edge_attr[self.perm]


def build_graph(edge_index: torch.Tensor, n_src: int, n_dst: int, add_self_loops: bool) -> Graph:
    """Self loops as PyG's GATv2Conv: all removed, then one per node ``0 .. min(n_src, n_dst) - 1``."""
    if not isinstance(edge_index, torch.Tensor) or edge_index.layout != torch.strided:
        raise TypeError("edge_index must be a dense [2, E] tensor (SparseTensor and torch.sparse adjacencies are "
                        f"not supported), got {type(edge_index).__name__}"
                        + (f" with layout {edge_index.layout}" if isinstance(edge_index, torch.Tensor) else ""))
    kept, num_loops = None, 0
    if add_self_loops and edge_index.dim() == 2 and edge_index.shape[0] == 2:
        kept = (edge_index[0] != edge_index[1]).nonzero().view(-1)
        num_loops = min(n_src, n_dst)
        loops = torch.arange(num_loops, device=edge_index.device, dtype=edge_index.dtype)
        edge_index = torch.cat([edge_index[:, kept], torch.stack([loops, loops])], dim=1)
    indptr, indices = csr_from_edge_index(edge_index, n_dst, num_src=n_src)
    perm = torch.argsort(edge_index[1], stable=True)  # the order csr_from_edge_index sorts by
    return Graph(edge_index, indptr, indices, perm, kept, num_loops, n_dst)
