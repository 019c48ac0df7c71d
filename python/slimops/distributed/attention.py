"""GAT and GATv2 attention over the partitioned graph, on the fused ops' partial aggregation and merge.

A rank's output rows attend over sources in several blocks: its own nodes and
the halo of each peer. ``softmax`` over all of a node's edges is the online
merge of per-block ``(partial out, log-sum-exp)`` pairs
(:func:`slimops.gat.merge`), so blocks can be visited one at a time.

* :func:`attention_all`: every halo at once (:func:`exchange.exchange_all`),
  then the sequential aggregation of :mod:`slimops.gat`; autograd keeps every
  halo alive until backward.
* :class:`_SARAttention` (Sequential Aggregation and Rematerialisation): visits
  peers in ring order, merges each halo's partial result and frees the halo;
  saves only the layer's own tensors, the merged output and its log-sum-exp.
  Backward walks the ring again, *fetching each halo again* (attention's
  gradient needs the halo values, unlike sum aggregation) with the forward's
  codec seeds, so the recomputed halo is bit for bit the forward's; then the
  op's partial backward per block, and the halo gradients go back to their
  owners. No E x H matrix and no halo outlives its block.

Two kinds of attention share this machinery (:class:`GAT`, :class:`GATv2`); each
says what its halo carries, how a block aggregates and how a block's gradient
splits:

* GAT (Velickovic et al. 2018): the halo carries ``z = h W`` (``heads *
  channels`` wide); the receiver computes ``a_src = <z_j, att_src>`` itself.
  Its two other inputs are ``att_src`` [H, C] and ``a_dst`` [n, H].
* GATv2 (Brody et al. 2022): the halo carries ``x_l = lin_l(h)``; the score
  ``<att, LeakyReLU(x_l[j] + x_r[i])>`` needs the destination's ``x_r``, which
  is local. Its two other inputs are ``x_r`` [n, H, C] and ``att`` [H, C].

Attention dropout uses one seed per call and edge counters laid out block by
block in the source owner's rank order, so both modes drop the same edges.
"""

from __future__ import annotations

import torch

from ..gat.api import draw_seed, merge, partial_backward, partial_forward, sequential_aggregate
from ..gat.v2_api import gatv2_partial_backward, gatv2_partial_forward, gatv2_sequential_aggregate
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


class GAT:
    """GAT's blocks: sources ``h`` [n_b, H, C] (rows of ``z``), ``a`` = ``(att_src [H, C], a_dst [n, H])``."""

    name = "gat"

    @staticmethod
    def forward(h, a, block, negative_slope, dropout, seed, offset):
        att_src, a_dst = a
        return partial_forward(h, _scores(h, att_src), a_dst, *block, negative_slope, dropout, seed, offset)

    @staticmethod
    def backward(g, out, lse, h, a, block, negative_slope, dropout, seed, offset):
        """``(grad of h, (grad of att_src, grad of a_dst))``: this block's parts."""
        att_src, a_dst = a
        gh, gs, g_adst = partial_backward(g, out, lse, h, _scores(h, att_src), a_dst, *block, negative_slope,
                                          dropout, seed, offset)
        return gh + gs.unsqueeze(-1) * att_src, ((gs.unsqueeze(-1) * h).sum(0), g_adst)

    @staticmethod
    def sequential(sources, a, blocks, negative_slope, dropout, seed):
        att_src, a_dst = a
        parts = [(h, _scores(h, att_src), *b) for h, b in zip(sources, blocks)]
        return sequential_aggregate(parts, a_dst, negative_slope, dropout, seed)


class GATv2:
    """GATv2's blocks: sources ``h`` [n_b, H, C] (rows of ``x_l``), ``a`` = ``(x_r [n, H, C], att [H, C])``."""

    name = "gatv2"

    @staticmethod
    def forward(h, a, block, negative_slope, dropout, seed, offset):
        xr, att = a
        return gatv2_partial_forward(h, xr, att, *block, None, None, negative_slope, dropout, seed, offset)

    @staticmethod
    def backward(g, out, lse, h, a, block, negative_slope, dropout, seed, offset):
        """``(grad of h, (grad of x_r, grad of att))``: this block's parts."""
        xr, att = a
        g_xl, g_xr, g_att, _, _ = gatv2_partial_backward(g, out, lse, h, xr, att, *block, None, None,
                                                         negative_slope, dropout, seed, offset)
        return g_xl, (g_xr, g_att)

    @staticmethod
    def sequential(sources, a, blocks, negative_slope, dropout, seed):
        xr, att = a
        return gatv2_sequential_aggregate([(h, None, *b) for h, b in zip(sources, blocks)], xr, att, None,
                                          negative_slope, dropout, seed)


class _SARAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hctx: HaloContext, kind, heads: int, negative_slope: float, dropout: float, seed: int,
                z, a0, a1, *lparams):
        plan = hctx.plan
        blocks, offsets = attention_blocks(plan)
        learned = len(lparams) > 0
        k = hctx.codec_latent if learned else z.shape[1]
        a = (a0, a1)
        out, lse = kind.forward(z.view(z.shape[0], heads, -1), a, blocks[plan.rank], negative_slope, dropout, seed,
                                offsets[plan.rank])
        call = hctx.new_call()
        ctx.hctx, ctx.kind, ctx.k, ctx.labels, ctx.call = hctx, kind, k, hctx.comm.labels, call
        with hctx.comm.phase("forward exchange"):
            for ps, pr in ring(plan):
                halo = fetch(z, hctx, ps, pr, lparams if learned else None, k, call)
                if learned:
                    halo = hctx.comm.track(decode(halo, lparams[2], lparams[3], k))
                if halo.shape[0]:
                    o, l = kind.forward(halo.view(halo.shape[0], heads, -1), a, blocks[pr], negative_slope, dropout,
                                        seed, offsets[pr])
                    out, lse = merge([out, o], [lse, l])
                del halo
        ctx.args = (heads, negative_slope, dropout, seed)
        ctx.save_for_backward(z, a0, a1, out, lse, *lparams)
        return out

    @staticmethod
    def backward(ctx, g):
        hctx, kind, k = ctx.hctx, ctx.kind, ctx.k
        heads, negative_slope, dropout, seed = ctx.args
        z, a0, a1, out, lse, *lparams = ctx.saved_tensors
        plan = hctx.plan
        blocks, offsets = attention_blocks(plan)
        learned = len(lparams) > 0
        g = g.contiguous()
        a = (a0, a1)
        gz, ga = kind.backward(g, out, lse, z.view(z.shape[0], heads, -1), a, blocks[plan.rank], negative_slope,
                               dropout, seed, offsets[plan.rank])
        gz, ga = gz.reshape(z.shape), list(ga)
        gp = [torch.zeros_like(p) for p in lparams]
        for ps, pr in ring(plan):
            with hctx.comm.phase("re-fetch", within=ctx.labels):  # rematerialise pr's halo
                code = fetch(z, hctx, ps, pr, lparams if learned else None, k, ctx.call)
            halo = decode(code, lparams[2], lparams[3], k) if learned else code
            if halo.shape[0]:
                ghalo, gap = kind.backward(g, out, lse, halo.view(halo.shape[0], heads, -1), a, blocks[pr],
                                           negative_slope, dropout, seed, offsets[pr])
                ghalo = ghalo.reshape(halo.shape)
                for i, t in enumerate(gap):
                    ga[i] += t
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
        return (None, None, None, None, None, None, gz, *ga, *gp)


def attention_all(kind, z, a, hctx: HaloContext, heads: int, negative_slope: float, dropout: float, seed: int,
                  codec=None) -> torch.Tensor:
    """Every halo at once, then the blocks one after another (by owner rank) with plain autograd."""
    plan = hctx.plan
    blocks, _ = attention_blocks(plan)
    halos = dict(zip(plan.peers(), exchange_all(z, hctx, codec)))
    sources = [(z if p == plan.rank else halos[p]).view(-1, heads, z.shape[1] // heads) for p in range(plan.world)]
    return kind.sequential(sources, a, [blocks[p] for p in range(plan.world)], negative_slope, dropout, seed)


def _aggregate(kind, z, a, hctx: HaloContext, heads: int, negative_slope: float, dropout: float, training: bool,
               codec) -> torch.Tensor:
    """Checks, the dropout seed, then all at once or SAR as ``hctx.mode`` says."""
    plan = hctx.plan
    if z.dim() != 2 or z.shape[0] != plan.num_local or z.shape[1] % heads:
        raise ValueError(f"rank {plan.rank}: {kind.name} attention expects its halo rows of shape ({plan.num_local}, "
                         f"heads * channels) with heads={heads}, got {list(z.shape)}")
    if hctx.learned and codec is None:
        raise ValueError("the learned codec needs the layer's LearnedCodec module")
    if getattr(plan, "norm", "gat") != "gat":
        raise ValueError(f"rank {plan.rank}: {kind.name} needs a plan built with norm='gat', this one has "
                         f"{plan.norm!r}")
    p = float(dropout) if training else 0.0
    seed = draw_seed() if p > 0 else 0
    if hctx.mode == "all":
        return attention_all(kind, z, a, hctx, heads, negative_slope, p, seed, codec)
    lparams = ()
    if hctx.learned:
        hctx.codec_latent = codec.latent(hctx.ratio)
        lparams = codec.params()
    return _SARAttention.apply(hctx, kind, heads, float(negative_slope), p, seed, z, *a, *lparams)


def attention(z: torch.Tensor, att_src: torch.Tensor, a_dst: torch.Tensor, hctx: HaloContext, heads: int,
              negative_slope: float = 0.2, dropout: float = 0.0, training: bool = True,
              codec=None) -> torch.Tensor:
    """GAT aggregation [n, H, C] of this rank's rows over the whole graph.

    ``z`` [n, H * C]: this rank's transformed features (what the halo carries); ``att_src`` [H, C];
    ``a_dst`` [n, H] = ``<z_i, att_dst>``. ``out_i = sum_j softmax_j(leaky_relu(a_src_j + a_dst_i)) z_j``
    over i's edges (self loop included), Velickovic et al. 2018.
    """
    return _aggregate(GAT, z, (att_src.reshape(heads, -1), a_dst), hctx, heads, negative_slope, dropout, training,
                      codec)


def attention_v2(xl: torch.Tensor, xr: torch.Tensor, att: torch.Tensor, hctx: HaloContext, heads: int,
                 negative_slope: float = 0.2, dropout: float = 0.0, training: bool = True,
                 codec=None) -> torch.Tensor:
    """GATv2 aggregation [n, H, C] of this rank's rows over the whole graph.

    ``xl`` [n, H * C]: this rank's source projections (what the halo carries); ``xr`` [n, H * C] or [n, H, C]:
    its destination projections; ``att`` [H, C]. ``out_i = sum_j softmax_j(<att, leaky_relu(xl_j + xr_i)>) xl_j``
    over i's edges (self loop included), Brody et al. 2022.
    """
    if xr.shape[0] != xl.shape[0] or xr.numel() != xl.numel():
        raise ValueError(f"xr must have xl's shape {list(xl.shape)} (the destination projections of the same rows), "
                         f"got {list(xr.shape)}")
    return _aggregate(GATv2, xl, (xr.reshape(xl.shape[0], heads, -1), att.reshape(heads, -1)), hctx, heads,
                      negative_slope, dropout, training, codec)
