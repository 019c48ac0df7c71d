"""GCN, GraphSAGE, GAT and GATv2 whose aggregation runs over the partitioned graph.

Each layer transforms first (``z = h W``, so the halo carries the narrow output
features) and aggregates ``z`` over the whole graph: sum / mean with
:func:`exchange.aggregate`, attention with :func:`attention.attention` and
:func:`attention.attention_v2` (the fused GAT / GATv2 ops' partial aggregation and
merge). With the learned codec a layer owns the encoder / decoder pair of its exchange.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..gat.conv import _glorot
from .attention import attention, attention_v2
from .exchange import HaloContext, aggregate
from .learned import LearnedCodec

MODELS = ("gcn", "sage", "gat", "gatv2")


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


class _DistAttentionConv(nn.Module):
    """What the GAT and GATv2 layers share: the checks, ``heads`` / ``out_channels`` / ``concat``, the learned
    codec of the halo (``heads * fout`` wide) and the heads concatenated or averaged plus ``bias``."""

    norm = "gat"

    def __init__(self, fout: int, heads: int, concat: bool, negative_slope: float, attn_dropout: float):
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"attn_dropout must be in [0, 1), got {attn_dropout}")
        self.heads, self.out_channels, self.concat = heads, fout, concat
        self.negative_slope, self.attn_dropout = negative_slope, attn_dropout

    def _codec(self, learned: bool) -> None:
        self.codec = LearnedCodec(self.heads * self.out_channels) if learned else None

    def _heads_out(self, out: torch.Tensor) -> torch.Tensor:
        out = out.reshape(out.shape[0], -1) if self.concat else out.mean(dim=1)
        return out + self.bias


class DistGATConv(_DistAttentionConv):
    """GAT layer (Velickovic et al.) as :class:`slimops.gat.FusedGATConv` / PyG ``GATConv``, same parameter names
    and initialisation: ``z = h W`` [n, heads * fout], ``out_i = sum_j alpha_ij z_j`` per head over i's edges and
    self loop, heads concatenated (``concat``) or averaged, plus ``bias``. The halo carries ``z``."""

    def __init__(self, fin: int, fout: int, learned: bool = False, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, attn_dropout: float = 0.0):
        super().__init__(fout, heads, concat, negative_slope, attn_dropout)
        self.lin = nn.Linear(fin, heads * fout, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, fout))
        self.att_dst = nn.Parameter(torch.empty(1, heads, fout))
        self.bias = nn.Parameter(torch.zeros(heads * fout if concat else fout))
        for t in (self.lin.weight, self.att_src, self.att_dst):
            _glorot(t)
        self._codec(learned)

    def forward(self, h: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        z = self.lin(h)
        a_dst = (z.view(-1, self.heads, self.out_channels) * self.att_dst).sum(-1)
        return self._heads_out(attention(z, self.att_src, a_dst, hctx, self.heads, self.negative_slope,
                                         self.attn_dropout, self.training, self.codec))


class DistGATv2Conv(_DistAttentionConv):
    """GATv2 layer (Brody et al.) as :class:`slimops.nn.FusedGATv2Conv` / PyG ``GATv2Conv`` (``share_weights``
    False, no edge features), same parameter names and initialisation: ``x_l = lin_l(h)``, ``x_r = lin_r(h)``
    [n, heads * fout], ``out_i = sum_j alpha_ij x_l[j]`` with ``alpha_ij = softmax_j(<att, LeakyReLU(x_l[j] +
    x_r[i])>)`` per head over i's edges and self loop, heads concatenated (``concat``) or averaged, plus ``bias``.
    The halo carries ``x_l``; ``x_r`` stays on its rank (only destinations need it)."""

    def __init__(self, fin: int, fout: int, learned: bool = False, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, attn_dropout: float = 0.0):
        super().__init__(fout, heads, concat, negative_slope, attn_dropout)
        self.lin_l = nn.Linear(fin, heads * fout)
        self.lin_r = nn.Linear(fin, heads * fout)
        self.att = nn.Parameter(torch.empty(1, heads, fout))
        self.bias = nn.Parameter(torch.zeros(heads * fout if concat else fout))
        for lin in (self.lin_l, self.lin_r):  # as PyG: glorot weights, uniform(+-1/sqrt(fin)) biases
            _glorot(lin.weight)
            nn.init.uniform_(lin.bias, -1.0 / math.sqrt(fin), 1.0 / math.sqrt(fin))
        _glorot(self.att)
        self._codec(learned)

    def forward(self, h: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        return self._heads_out(attention_v2(self.lin_l(h), self.lin_r(h), self.att, hctx, self.heads,
                                            self.negative_slope, self.attn_dropout, self.training, self.codec))


ATTENTION = {"gat": DistGATConv, "gatv2": DistGATv2Conv}  # the attention models: heads, ELU, a 'gat' plan


def _plain_halo(conv: nn.Module) -> None:
    """``conv`` loses its learned codec and sends its halo as fp32 (the learned codec's wire) while the others
    encode theirs: the halo context's ``learned`` flag is off during its forward, then as it was."""
    conv.codec = None

    def off(_, args):
        hctx = args[1]
        hctx.plain_halo_saved, hctx.learned = hctx.learned, False

    def back(_, args, out):
        args[1].learned = args[1].plain_halo_saved

    conv.register_forward_pre_hook(off)
    conv.register_forward_hook(back, always_call=True)


class DistGNN(nn.Module):
    """``layers`` graph convolutions with ReLU (ELU for GAT and GATv2) and dropout between them.

    GAT and GATv2: ``heads`` heads of ``hidden`` channels each, concatenated, in every layer but the last, which has one
    head of ``classes`` channels (Velickovic et al.'s Cora model with ``heads=8, hidden=8``). ``learned_last``
    False: the last layer has no learned codec and its halo (the logits) travels uncompressed, as in SAR's
    ``FeatureCompressorDecompressor`` (the VARCO authors' code)."""

    def __init__(self, kind: str, fin: int, hidden: int, classes: int, layers: int = 2, dropout: float = 0.5,
                 learned: bool = False, heads: int = 8, attn_dropout: float = 0.0, learned_last: bool = True):
        super().__init__()
        if kind not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
        if kind in ATTENTION:
            conv = ATTENTION[kind]
            dims = [fin] + [hidden * heads] * (layers - 1)
            self.convs = nn.ModuleList(
                [conv(a, hidden, learned, heads, True, attn_dropout=attn_dropout) for a in dims[:-1]]
                + [conv(dims[-1], classes, learned, 1, False, attn_dropout=attn_dropout)])
        else:
            conv = {"gcn": DistGCNConv, "sage": DistSAGEConv}[kind]
            dims = [fin] + [hidden] * (layers - 1) + [classes]
            self.convs = nn.ModuleList(conv(a, b, learned) for a, b in zip(dims[:-1], dims[1:]))
        if learned and not learned_last:
            _plain_halo(self.convs[-1])
        self.dropout = dropout
        self.norm = conv.norm
        self.act = F.elu if kind in ATTENTION else F.relu

    def forward(self, x: torch.Tensor, hctx: HaloContext) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, self.dropout, self.training)
            with hctx.comm.phase(f"layer {i}"):
                h = conv(h, hctx)
            if i < len(self.convs) - 1:
                h = self.act(h)
        return h
