"""GCN and GraphSAGE whose aggregation runs over the partitioned graph (:func:`exchange.aggregate`).

Each layer transforms first (``z = h W``, so the halo carries the narrow output
features) and aggregates ``z`` over the whole graph; with the learned codec it
owns the encoder / decoder pair of its exchange.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .exchange import HaloContext, LearnedCodec, aggregate

MODELS = ("gcn", "sage", "gat")


class DistGCNConv(nn.Module):
    """GCN layer (Kipf & Welling): ``D^-1/2 (A + I) D^-1/2 (h W) + b``."""

    norm = "gcn"

    def __init__(self, fin: int, fout: int, learned: bool = False):
        super().__init__()
        self.lin = nn.Linear(fin, fout, bias=False)
        nn.init.xavier_uniform_(self.lin.weight)
        self.bias = nn.Parameter(torch.zeros(fout))
        self.codec = LearnedCodec(fout) if learned else None

    def forward(self, h: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        return aggregate(self.lin(h), hctx, self.codec) + self.bias


class DistSAGEConv(nn.Module):
    """GraphSAGE layer with mean aggregation: ``h W_self + b + mean_{j in N(i)} (h_j W_neigh)``."""

    norm = "mean"

    def __init__(self, fin: int, fout: int, learned: bool = False):
        super().__init__()
        self.lin_self = nn.Linear(fin, fout)
        self.lin_neigh = nn.Linear(fin, fout, bias=False)
        self.codec = LearnedCodec(fout) if learned else None

    def forward(self, h: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        return self.lin_self(h) + aggregate(self.lin_neigh(h), hctx, self.codec)


class DistGNN(nn.Module):
    """``layers`` graph convolutions with ReLU and dropout between them."""

    def __init__(self, kind: str, fin: int, hidden: int, classes: int, layers: int = 2, dropout: float = 0.5,
                 learned: bool = False):
        super().__init__()
        conv = {"gcn": DistGCNConv, "sage": DistSAGEConv}.get(kind)
        if conv is None:
            raise ValueError(f"model must be one of ('gcn', 'sage') here, got {kind!r}")
        dims = [fin] + [hidden] * (layers - 1) + [classes]
        self.convs = nn.ModuleList(conv(a, b, learned) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout
        self.norm = conv.norm

    def forward(self, x: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, self.dropout, self.training)
            hctx.comm.where = f"layer {i}, {'forward' if torch.is_grad_enabled() else 'inference'}"
            h = conv(h, hctx)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return h
