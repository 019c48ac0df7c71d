"""FusedGATConv: a drop-in for PyG's ``GATConv`` over the fused GAT op (no E-sized tensor kept for backward)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .api import csr_from_edge_index, gat_attention


def _glorot(t: torch.Tensor) -> None:
    """PyG's glorot: uniform in +-sqrt(6 / (fan_in + fan_out)) over the last two dimensions."""
    bound = math.sqrt(6.0 / (t.size(-2) + t.size(-1)))
    with torch.no_grad():
        t.uniform_(-bound, bound)


class FusedGATConv(nn.Module):
    """Graph attention layer (Velickovic et al.) with PyG ``GATConv``'s constructor, parameters and forward.

    ``forward(x, edge_index)``: ``x`` [N, in_channels], ``edge_index`` [2, E] (row 0 source, row 1
    destination). Self-loops are handled as PyG does (all removed, then one added per node when
    ``add_self_loops``); duplicate edges are kept. The CSR is built once per graph and cached for the same
    ``edge_index`` tensor (identity and version); another tensor, even of the same shape, is rebuilt.

    Parameters as PyG 2.5+: ``lin.weight`` [heads * out_channels, in_channels], ``att_src`` and ``att_dst``
    [1, heads, out_channels], ``bias`` [heads * out_channels if concat else out_channels], ``res.weight``
    when ``residual``; a PyG ``GATConv`` state dict loads unchanged. Not supported: bipartite
    ``in_channels`` tuples, ``edge_dim``, ``return_attention_weights``.
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True, residual: bool = False):
        super().__init__()
        if not isinstance(in_channels, int):
            raise TypeError("FusedGATConv supports an int in_channels (no bipartite tuples)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.negative_slope, self.dropout = concat, negative_slope, dropout
        self.add_self_loops, self.residual = add_self_loops, residual
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        total = out_channels * (heads if concat else 1)
        self.res = nn.Linear(in_channels, total, bias=False) if residual else None
        self.bias = nn.Parameter(torch.empty(total)) if bias else None
        self._csr_key: Optional[tuple] = None
        self._csr: Optional[tuple] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _glorot(self.lin.weight)
        _glorot(self.att_src)
        _glorot(self.att_dst)
        if self.res is not None:
            _glorot(self.res.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def csr(self, edge_index: torch.Tensor, num_nodes: int):
        """(indptr, indices) of the graph with self-loops as PyG treats them; cached for this tensor."""
        key = (edge_index, edge_index._version, num_nodes, self.add_self_loops, edge_index.device)
        cached = self._csr_key
        if cached is not None and cached[0] is key[0] and cached[1:] == key[1:]:
            return self._csr
        ei = edge_index
        if ei.dim() == 2 and ei.shape[0] == 2 and self.add_self_loops:
            ei = ei[:, ei[0] != ei[1]]
            loops = torch.arange(num_nodes, device=ei.device, dtype=ei.dtype)
            ei = torch.cat([ei, torch.stack([loops, loops])], dim=1)
        self._csr = csr_from_edge_index(ei, num_nodes)
        self._csr_key = key
        return self._csr

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape [N, {self.in_channels}], got {list(x.shape)}")
        heads, channels = self.heads, self.out_channels
        h = self.lin(x).view(-1, heads, channels)
        a_src = (h * self.att_src).sum(-1)
        a_dst = (h * self.att_dst).sum(-1)
        indptr, indices = self.csr(edge_index, x.shape[0])
        out = self.attention(h, a_src, a_dst, indptr, indices)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        if self.res is not None:
            out = out + self.res(x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def attention(self, h, a_src, a_dst, indptr, indices) -> torch.Tensor:
        """The fused attention aggregation (the benchmark overrides it to time the reference)."""
        return gat_attention(h, a_src, a_dst, indptr, indices, self.negative_slope, self.dropout, self.training)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}"
