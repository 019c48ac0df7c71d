"""Shared pieces of the distributed tests: a small graph, a dense full-graph oracle, worker functions."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

PLANETOID = os.environ.get("SLIMOPS_PLANETOID", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                             "data", "planetoid"))
TIMEOUT = 60.0  # whole-spawn bound; collectives use less


def small_graph(nodes=240, seed=0):
    from slimops.data import synthetic_graph

    return synthetic_graph(nodes, degree=6, features=12, classes=4, seed=seed)


def dense_adj(edge_index, n, norm):
    a = torch.zeros(n, n)
    a[edge_index[1], edge_index[0]] = 1.0  # row = target
    if norm == "gcn":
        a = a + torch.eye(n)
        d = a.sum(1).rsqrt()
        return d[:, None] * a * d[None, :]
    return a / a.sum(1, keepdim=True).clamp_min(1)


def dense_forward(model, x, adj):
    """The model's forward on one process with a dense adjacency (the oracle)."""
    h = x
    for i, conv in enumerate(model.convs):
        if model.norm == "gcn":
            h = adj @ conv.lin(h) + conv.bias
        else:
            h = conv.lin_self(h) + adj @ conv.lin_neigh(h)
        if i < len(model.convs) - 1:
            h = F.relu(h)
    return h


class Args:
    """The few fields of the CLI that setup() reads, for workers that build a model directly."""

    def __init__(self, **kw):
        from slimops.distributed.train import parser

        ns = parser().parse_args([])
        ns.__dict__.update(kw)
        self.ns = ns


def gat_oracle_model(model):
    """The single-process twin of a distributed GAT or GATv2 model: FusedGATConv / FusedGATv2Conv layers with
    its weights."""
    from slimops.distributed.models import DistGATConv
    from slimops.nn import FusedGATConv, FusedGATv2Conv

    convs = torch.nn.ModuleList()
    for c in model.convs:
        if isinstance(c, DistGATConv):
            f = FusedGATConv(c.lin.in_features, c.out_channels, c.heads, c.concat, c.negative_slope)
        else:
            f = FusedGATv2Conv(c.lin_l.in_features, c.out_channels, c.heads, c.concat, c.negative_slope)
        f.load_state_dict({k: v for k, v in c.state_dict().items() if not k.startswith("codec.")})
        convs.append(f)
    return convs


def gat_dense_forward(convs, x, edge_index):
    h = x
    for i, conv in enumerate(convs):
        h = conv(h, edge_index)
        if i < len(convs) - 1:
            h = F.elu(h)
    return h


def fwd_bwd_worker(rank, world, model_kind, mode, partitioner, codec="none", nodes=240, attn_dropout=0.0,
                   torch_seed=None):
    """Distributed forward and backward (feature dropout 0); returns own ids, logits and all-reduced gradients."""
    from slimops.distributed.comm import Comm
    from slimops.distributed.train import setup

    ns = Args(dataset="synthetic", nodes=nodes, degree=6, features=12, classes=4, model=model_kind, mode=mode,
              partitioner=partitioner, dropout=0.0, codec=codec, hidden=8, heads=2, attn_dropout=attn_dropout).ns
    comm = Comm(rank, world, 20.0)
    g, plan, hctx, model = setup(ns, rank, world, comm)
    hctx.set_codec(codec, 4.0)
    if torch_seed is not None:  # the attention dropout seed drawn in forward: the same in both modes
        torch.manual_seed(torch_seed + rank)
    x = g.x[plan.own]
    out = model(x, hctx)
    tm = g.train_mask[plan.own]
    loss = F.cross_entropy(out[tm], g.y[plan.own][tm], reduction="sum") / int(g.train_mask.sum())
    loss.backward()
    grads = {n: comm.all_reduce_(p.grad.clone()) for n, p in model.named_parameters()}
    return {"own": plan.own, "out": out.detach(), "grads": grads, "bytes": dict(comm.bytes)}
