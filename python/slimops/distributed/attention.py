"""GAT attention over the partitioned graph, on the fused op's partial aggregation and merge (:mod:`slimops.gat`).

A rank's output rows attend over sources in several blocks: its own nodes and
the halo of each peer. ``softmax`` over all of a node's edges is the online
merge of per-block ``(partial out, log-sum-exp)`` pairs
(:func:`slimops.gat.merge`), so blocks can be visited one at a time.

* :func:`attention_all`: every halo at once (:func:`exchange.exchange_all`),
  then :func:`slimops.gat.sequential_aggregate`; autograd keeps every halo alive
  until backward.
* :class:`_SARAttention` (Sequential Aggregation and Rematerialisation): visits
  peers in ring order, merges each halo's partial result and frees the halo;
  saves only ``z``, the merged output and its log-sum-exp. Backward walks the
  ring again, *fetching each halo again* (attention's gradient needs the halo
  values, unlike sum aggregation) with the forward's codec seeds, so the
  recomputed halo is bit for bit the forward's; then
  :func:`slimops.gat.partial_backward` per block and the halo gradients go back
  to their owners. No E x H matrix and no halo outlives its block.

The halo carries ``z = h W`` (``heads * channels`` wide); the receiver computes
``a_src = <z_j, att_src>`` itself. Attention dropout uses one seed per call and
edge counters laid out block by block in the source owner's rank order, so
both modes drop the same edges.
"""

from __future__ import annotations

import torch

from ..gat.api import draw_seed, merge, partial_backward, partial_forward, sequential_aggregate
from .exchange import HaloContext, exchange_all
from .learned import decode, through_decoder, through_encoder
from .partition import HaloPlan
from .ring import fetch, ring, send_grad


def attention_blocks(plan: HaloPlan):
    """``(blocks, offsets)``: per source owner, the CSR by destination ``(indptr, indices)`` of this rank's rows
    (indices local to the block: own rows, or positions in ``recv_ids[p]``), and the first dropout counter of
    each block. Built once per plan (which must come from ``build_plan(..., norm="gat")``)."""
    cached = getattr(plan, "_attention_blocks", None)
    if cached is not None:
        return cached
    blocks, offsets, start = {}, {}, 0
    for p in range(plan.world):
        adj = plan.adj_local if p == plan.rank else plan.adj_remote[p]
        indptr, indices = adj.crow_indices(), adj.col_indices()
        idx_dtype = torch.int32 if max(indices.numel(), adj.shape[1]) < 2**31 - 1 else torch.int64
        blocks[p] = (indptr.to(idx_dtype), indices.to(idx_dtype))
        offsets[p] = start
        start += indices.numel()
    plan._attention_blocks = (blocks, offsets)
    return plan._attention_blocks


def _scores(z: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """``<z_j, att>`` per head: [n, H]; ``z`` [n, H, C], ``att`` [H, C]."""
    return (z * att).sum(-1)


class _SARAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hctx: HaloContext, heads: int, negative_slope: float, dropout: float, seed: int,
                z, att_src, a_dst, *lparams):
        plan = hctx.plan
        blocks, offsets = attention_blocks(plan)
        learned = len(lparams) > 0
        k = hctx.codec_latent if learned else z.shape[1]
        zl = z.view(z.shape[0], heads, -1)
        out, lse = partial_forward(zl, _scores(zl, att_src), a_dst, *blocks[plan.rank], negative_slope, dropout,
                                   seed, offsets[plan.rank])
        call = hctx.new_call()
        ctx.hctx, ctx.k, ctx.labels, ctx.call = hctx, k, hctx.comm.labels, call
        with hctx.comm.phase("forward exchange"):
            for ps, pr in ring(plan):
                halo = fetch(z, hctx, ps, pr, lparams if learned else None, k, call)
                if learned:
                    halo = hctx.comm.track(decode(halo, lparams[2], lparams[3], k))
                if halo.shape[0]:
                    hv = halo.view(halo.shape[0], heads, -1)
                    o, l = partial_forward(hv, _scores(hv, att_src), a_dst, *blocks[pr], negative_slope, dropout,
                                           seed, offsets[pr])
                    out, lse = merge([out, o], [lse, l])
                del halo
        ctx.args = (heads, negative_slope, dropout, seed)
        ctx.save_for_backward(z, att_src, a_dst, out, lse, *lparams)
        return out

    @staticmethod
    def backward(ctx, g):
        hctx, k = ctx.hctx, ctx.k
        heads, negative_slope, dropout, seed = ctx.args
        z, att_src, a_dst, out, lse, *lparams = ctx.saved_tensors
        plan = hctx.plan
        blocks, offsets = attention_blocks(plan)
        learned = len(lparams) > 0
        g = g.contiguous()
        zl = z.view(z.shape[0], heads, -1)
        gh, gs, g_adst = partial_backward(g, out, lse, zl, _scores(zl, att_src), a_dst, *blocks[plan.rank],
                                          negative_slope, dropout, seed, offsets[plan.rank])
        g_att = (gs.unsqueeze(-1) * zl).sum(0)
        gz = (gh + gs.unsqueeze(-1) * att_src).reshape(z.shape)
        gp = [torch.zeros_like(p) for p in lparams]
        for ps, pr in ring(plan):
            with hctx.comm.phase("re-fetch", within=ctx.labels):  # rematerialise pr's halo
                code = fetch(z, hctx, ps, pr, lparams if learned else None, k, ctx.call)
            halo = decode(code, lparams[2], lparams[3], k) if learned else code
            if halo.shape[0]:
                hv = halo.view(halo.shape[0], heads, -1)
                ghp, gsp, gdp = partial_backward(g, out, lse, hv, _scores(hv, att_src), a_dst, *blocks[pr],
                                                 negative_slope, dropout, seed, offsets[pr])
                g_adst += gdp
                g_att += (gsp.unsqueeze(-1) * hv).sum(0)
                ghalo = (ghp + gsp.unsqueeze(-1) * att_src).reshape(halo.shape)
            else:
                ghalo = torch.zeros_like(halo)
            del halo
            if learned:
                ghalo = through_decoder(code, lparams, k, ghalo, gp)
            gsend = send_grad(hctx, ps, pr, ghalo, ctx.call, ctx.labels)
            idx = plan.send_idx[ps]
            if learned:
                gsend = through_encoder(z, idx, gsend, lparams, k, gp)
            gz.index_add_(0, idx, gsend)
        return (None, None, None, None, None, gz, g_att, g_adst, *gp)


def attention_all(z, att_src, a_dst, hctx: HaloContext, heads: int, negative_slope: float, dropout: float,
                  seed: int, codec=None) -> torch.Tensor:
    """Every halo at once, then the blocks one after another (by owner rank) with plain autograd."""
    plan = hctx.plan
    blocks, _ = attention_blocks(plan)
    halos = dict(zip(plan.peers(), exchange_all(z, hctx, codec)))
    parts = []
    for p in range(plan.world):
        h = (z if p == plan.rank else halos[p]).view(-1, heads, z.shape[1] // heads)
        parts.append((h, _scores(h, att_src), *blocks[p]))
    return sequential_aggregate(parts, a_dst, negative_slope, dropout, seed)


def attention(z: torch.Tensor, att_src: torch.Tensor, a_dst: torch.Tensor, hctx: HaloContext, heads: int,
              negative_slope: float = 0.2, dropout: float = 0.0, training: bool = True,
              codec=None) -> torch.Tensor:
    """GAT aggregation [n, H, C] of this rank's rows over the whole graph.

    ``z`` [n, H * C]: this rank's transformed features (what the halo carries); ``att_src`` [H, C];
    ``a_dst`` [n, H] = ``<z_i, att_dst>``. ``out_i = sum_j softmax_j(leaky_relu(a_src_j + a_dst_i)) z_j``
    over i's edges (self loop included), Velickovic et al. 2018.
    """
    plan = hctx.plan
    if z.dim() != 2 or z.shape[0] != plan.num_local or z.shape[1] % heads:
        raise ValueError(f"rank {plan.rank}: attention expects z of shape ({plan.num_local}, heads * channels) "
                         f"with heads={heads}, got {list(z.shape)}")
    if hctx.learned and codec is None:
        raise ValueError("the learned codec needs the layer's LearnedCodec module")
    if getattr(plan, "norm", "gat") != "gat":
        raise ValueError(f"rank {plan.rank}: GAT needs a plan built with norm='gat', this one has {plan.norm!r}")
    p = float(dropout) if training else 0.0
    seed = draw_seed() if p > 0 else 0
    att_src = att_src.reshape(heads, -1)
    if hctx.mode == "all":
        return attention_all(z, att_src, a_dst, hctx, heads, negative_slope, p, seed, codec)
    if hctx.learned:
        hctx.codec_latent = codec.latent(hctx.ratio)
        return _SARAttention.apply(hctx, heads, float(negative_slope), p, seed, z, att_src, a_dst, *codec.params())
    return _SARAttention.apply(hctx, heads, float(negative_slope), p, seed, z, att_src, a_dst)
