"""FusedGATv2Conv: a drop-in for PyG's ``GATv2Conv`` over the fused GATv2 op (no E-sized tensor kept for backward)."""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import nn

from ..gat import eager, v2_reference
from ..gat.api import draw_seed
from ..gat.conv import _glorot
from ..gat.reference import _edges, dropout_weights
from ..gat.v2_api import _edge_args
from ..gat.v2_graph import Graph, build_graph, check_fill_value


def _linear(in_channels: int, out_channels: int, bias: bool) -> nn.Linear:
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels <= 0:
        raise ValueError(f"in_channels must be a positive int or a pair of them (lazy -1 is not supported), "
                         f"got {in_channels!r}")
    return nn.Linear(in_channels, out_channels, bias=bias)


class FusedGATv2Conv(nn.Module):
    """GATv2 (Brody et al.) with PyG ``GATv2Conv``'s constructor, parameters, state dict and forward.

    ``forward(x, edge_index, edge_attr=None, return_attention_weights=None)``: ``x`` [N, in_channels] or a
    pair ``(x_src, x_dst)`` (bipartite, ``in_channels=(src, dst)``), ``edge_index`` [2, E] (row 0 source, row
    1 destination), ``edge_attr`` [E, edge_dim] or [E]. Each edge's score ``a . LeakyReLU(lin_l(x_j) +
    lin_r(x_i) + lin_edge(e_ij))`` is computed inside the fused op, the edge term from ``edge_attr`` and
    ``lin_edge.weight`` (no E x H x C tensor is kept); backward recomputes it from per-node statistics.

    Self loops as PyG: all removed, then one per node ``0 .. min(N_src, N_dst) - 1`` when
    ``add_self_loops``, their edge features from ``fill_value`` (``"mean"`` of the in-edges by default; a
    float, a tensor, ``"add"``, ``"min"``, ``"max"``, ``"mul"``). The CSR is built once per graph and
    cached for the same ``edge_index`` tensor (identity and version); ``edge_attr`` is gathered into CSR
    order on every call, so it may change and carry gradients.

    Parameters as PyG 2.5+: ``lin_l`` and ``lin_r`` (one module when ``share_weights``; both names in the
    state dict, as PyG's), ``att`` [1, heads, out_channels], ``lin_edge`` (no bias) when ``edge_dim``,
    ``res`` when ``residual``, ``bias``; a PyG ``GATv2Conv`` state dict loads unchanged and back.
    ``return_attention_weights=True`` returns ``(out, (edge_index, alpha))`` in PyG's edge order (after
    self loops), alpha after dropout while training (the op's mask, replayed from its seed); alpha is then
    computed as PyG does (E x H x C, differentiable), only when asked. Not supported: lazy
    ``in_channels=-1``, SparseTensor / torch.sparse adjacency (TypeError).
    """

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int, heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: Optional[int] = None, fill_value: Union[float, torch.Tensor, str] = "mean",
                 bias: bool = True, share_weights: bool = False, residual: bool = False):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not isinstance(heads, int) or heads < 1 or not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"heads and out_channels must be positive ints, got {heads!r} and {out_channels!r}")
        if edge_dim is not None and (not isinstance(edge_dim, int) or edge_dim < 1):
            raise ValueError(f"edge_dim must be None or a positive int, got {edge_dim!r}")
        check_fill_value(fill_value)
        in_src, in_dst = (in_channels, in_channels) if isinstance(in_channels, int) else tuple(in_channels)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.negative_slope, self.dropout = concat, negative_slope, dropout
        self.add_self_loops, self.edge_dim, self.fill_value = add_self_loops, edge_dim, fill_value
        self.residual, self.share_weights = residual, share_weights
        hc = heads * out_channels
        self.lin_l = _linear(in_src, hc, bias)
        self.lin_r = self.lin_l if share_weights else _linear(in_dst, hc, bias)
        self.att = nn.Parameter(torch.empty(1, heads, out_channels))
        self.lin_edge = _linear(edge_dim, hc, False) if edge_dim is not None else None
        total = out_channels * (heads if concat else 1)
        self.res = _linear(in_dst, total, False) if residual else None
        self.bias = nn.Parameter(torch.empty(total)) if bias else None
        self._graph_key: Optional[tuple] = None
        self._graph: Optional[Graph] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """As PyG: glorot weights and ``att``, uniform(+-1/sqrt(in)) biases of lin_l / lin_r, zero bias."""
        for lin in (self.lin_l, self.lin_r, self.lin_edge, self.res):
            if lin is not None:
                _glorot(lin.weight)
                if lin.bias is not None:
                    bound = 1.0 / math.sqrt(lin.in_features)
                    nn.init.uniform_(lin.bias, -bound, bound)
        _glorot(self.att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def graph(self, edge_index: torch.Tensor, n_src: int, n_dst: int) -> Graph:
        """The CSR (and edge permutation) of the graph with self loops as PyG treats them; cached."""
        key = (edge_index, getattr(edge_index, "_version", None), n_src, n_dst, self.add_self_loops,
               getattr(edge_index, "device", None))
        cached = self._graph_key
        if cached is not None and cached[0] is key[0] and cached[1:] == key[1:]:
            return self._graph
        self._graph = build_graph(edge_index, n_src, n_dst, self.add_self_loops)
        self._graph_key = key
        return self._graph

    def forward(self, x, edge_index, edge_attr: Optional[torch.Tensor] = None,
                return_attention_weights: Optional[bool] = None):
        heads, channels = self.heads, self.out_channels
        bipartite = not isinstance(x, torch.Tensor)
        if bipartite:
            if not (isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(t, torch.Tensor) for t in x)):
                raise TypeError("x must be a tensor or a pair (x_src, x_dst) of tensors")
            x_src, x_dst = x
        else:
            x_src = x_dst = x
        for name, t, lin in (("x_src" if bipartite else "x", x_src, self.lin_l),
                             ("x_dst" if bipartite else "x", x_dst, self.lin_r)):
            want = getattr(lin, "in_features", t.shape[-1])  # (the benchmark swaps in an identity)
            if t.dim() != 2 or t.shape[1] != want:
                raise ValueError(f"{name} must have shape [N, {want}], got {list(t.shape)}")
        xl = self.lin_l(x_src).view(-1, heads, channels)
        xr = xl if (self.share_weights and not bipartite) else self.lin_r(x_dst).view(-1, heads, channels)
        g = self.graph(edge_index, x_src.shape[0], x_dst.shape[0])
        ea = w_edge = None
        if edge_attr is not None:
            if self.lin_edge is None:
                raise ValueError("edge_attr was given but the layer has no edge_dim (build it with edge_dim=D)")
            ea = g.edge_features(edge_attr, edge_index.shape[1], self.fill_value).to(xl.dtype)
            if ea.shape[1] != self.edge_dim:
                raise ValueError(f"edge_attr must have edge_dim = {self.edge_dim} columns, got {ea.shape[1]}")
            w_edge = self.lin_edge.weight
        p = self.dropout if self.training else 0.0
        seed = draw_seed() if p > 0 else 0
        att = self.att.view(heads, channels)
        out, lse = self.attention(xl, xr, att, g.indptr, g.indices, ea, w_edge, p, seed)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        if self.res is not None:
            out = out + self.res(x_dst)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, (g.edge_index, self._alpha(g, xl, xr, att, ea, w_edge, p, seed))
        return out

    def attention(self, xl, xr, att, indptr, indices, edge_attr, w_edge, dropout: float, seed: int):
        """The fused attention aggregation: ``(out [N_dst, H, C], lse)`` (the benchmark overrides it)."""
        edge_attr, w_edge = _edge_args(xl, edge_attr, w_edge, indices.shape[0])
        return eager.attention_v2(xl, xr, att, edge_attr, w_edge, indptr, indices, float(self.negative_slope),
                                  float(dropout), int(seed), 0)

    def _alpha(self, g: Graph, xl, xr, att, ea, w_edge, p: float, seed: int) -> torch.Tensor:
        """alpha [E, H] in PyG's edge order, as PyG computes it (differentiable), with the op's dropout mask."""
        ea, w_edge = _edge_args(xl, ea, w_edge, g.indices.shape[0])
        row, col = _edges(g.indptr, g.indices, g.n_dst)
        _, e = v2_reference._scores(xl, xr, att, ea, w_edge, row, col, self.negative_slope)
        m = torch.full((g.n_dst, self.heads), float("-inf"), device=e.device)
        m = m.scatter_reduce(0, row[:, None].expand_as(e), e.detach(), "amax")
        q = torch.exp(e - m[row])
        alpha = q / torch.zeros_like(m).index_add(0, row, q)[row]
        if p > 0:
            alpha = alpha * dropout_weights(seed, 0, e.shape[0], self.heads, p, e.device)
        out = torch.empty_like(alpha)
        out[g.perm] = alpha  # CSR order -> PyG's order
        return out.to(xl.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}"
