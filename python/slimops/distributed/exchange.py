"""The halo exchange as autograd functions: all halos at once, or SAR's one remote partition at a time.

* :func:`exchange_all` sends each peer its rows and returns the halos received,
  as an ordinary autograd node (backward sends the halo gradients back, through
  the backward codec). Aggregation after it is plain autograd, which keeps every
  halo of every layer alive until backward: simple, most memory.
* :func:`sar_aggregate` (Sequential Aggregation and Rematerialisation, Mostafa
  2021) computes ``A_local z + sum_p A_p halo_p`` visiting peers in ring order
  (step k: send to rank + k, receive from rank - k), freeing each halo once
  aggregated, and saves nothing (``z`` with the learned codec). Backward walks the ring again: it sends each
  peer the gradient of its halo and, where the backward needs the halo values
  themselves (the learned codec's decoder), fetches them again first
  (rematerialisation). Sum/mean aggregation is linear, so without a learned
  codec the gradient needs no halo values and nothing is fetched twice.

A :class:`HaloContext` carries the plan, the transport, the codec in force and
the mode; the model's layers call :func:`aggregate`.
"""

from __future__ import annotations


import torch

from .learned import LearnedCodec, decode, encode, through_decoder, through_encoder
from .halo import MODES, HaloContext  # noqa: F401  (re-exported: the exchange's public names)
from .ring import fetch, ring, send_grad

# ----------------------------------------------------------------------------- all at once


class _ExchangeAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hctx: HaloContext, f: int, *sends):
        plan, comm, codec = hctx.plan, hctx.comm, hctx.wire
        peers = plan.peers()
        for p, s in zip(peers, sends):
            codec.check(s, len(plan.send_idx[p]), f, f"rank {plan.rank} -> {p}")
        ctx.call = call = hctx.new_call()
        ctx.hctx, ctx.f, ctx.labels = hctx, f, comm.labels
        with comm.phase("forward exchange"):
            bufs = comm.sendrecv({p: codec.encode(s, hctx.wire_seed(call, p)) for p, s in zip(peers, sends)},
                                 {p: codec.nbytes(len(plan.recv_ids[p]), f) for p in peers}, device=hctx.device,
                                 shapes={p: tuple(s.shape) for p, s in zip(peers, sends)},
                                 recv_shapes={p: (len(plan.recv_ids[p]), f) for p in peers})
        return tuple(comm.track(codec.decode(bufs[p], len(plan.recv_ids[p]), f)) for p in peers)

    @staticmethod
    def backward(ctx, *grads):
        hctx, f = ctx.hctx, ctx.f
        plan, comm, codec = hctx.plan, hctx.comm, hctx.bwd_wire
        peers = plan.peers()
        sends, shapes = {}, {}
        for p, g in zip(peers, grads):
            g = torch.zeros(len(plan.recv_ids[p]), f, device=hctx.device) if g is None else g
            sends[p], shapes[p] = codec.encode(g, hctx.wire_seed(ctx.call, p, True)), tuple(g.shape)
        with comm.phase("backward exchange", within=ctx.labels):
            bufs = comm.sendrecv(sends, {p: codec.nbytes(len(plan.send_idx[p]), f) for p in peers}, hctx.device,
                                 shapes=shapes, recv_shapes={p: (len(plan.send_idx[p]), f) for p in peers})
        return (None, None) + tuple(codec.decode(bufs[p], len(plan.send_idx[p]), f) for p in peers)


def exchange_all(z: torch.Tensor, hctx: HaloContext, codec: "LearnedCodec | None" = None) -> list:
    """Halo rows from every peer (decoded), in ``plan.peers()`` order; differentiable."""
    plan = hctx.plan
    sends = [z[plan.send_idx[p]] for p in plan.peers()]
    f = z.shape[1]
    if hctx.learned:
        k = codec.latent(hctx.ratio)
        sends = [encode(s, codec.enc_weight, codec.enc_bias, k) for s in sends]
        halos = _ExchangeAll.apply(hctx, k, *sends)
        return [hctx.comm.track(decode(h, codec.dec_weight, codec.dec_bias, k)) for h in halos]
    return list(_ExchangeAll.apply(hctx, f, *sends))


class _PlanSpMM(torch.autograd.Function):
    """``a @ x`` for a constant sparse ``a`` whose transpose ``a_t`` the plan holds: backward is ``a_t @ g``
    (torch.sparse.mm's own backward transposes the CSR on every call, about 4x slower here)."""

    @staticmethod
    def forward(ctx, a, a_t, x):
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, g):
        return None, None, torch.sparse.mm(ctx.a_t, g.contiguous())


def aggregate_all(z: torch.Tensor, hctx: HaloContext, codec=None) -> torch.Tensor:
    plan = hctx.plan
    out = _PlanSpMM.apply(plan.adj_local, plan.adj_local_t, z) if plan.num_local else z.new_zeros(0, z.shape[1])
    for p, h in zip(plan.peers(), exchange_all(z, hctx, codec)):
        if h.shape[0]:
            out = out + _PlanSpMM.apply(plan.adj_remote[p], plan.adj_remote_t[p], h)
    return out


# ----------------------------------------------------------------------------- SAR


def _spmm(a, x):
    return torch.sparse.mm(a, x) if x.shape[0] and a.shape[0] else x.new_zeros(a.shape[0], x.shape[1])


class _SARAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hctx: HaloContext, z, *lparams):
        plan = hctx.plan
        learned = len(lparams) > 0
        k = hctx.codec_latent if learned else z.shape[1]
        out = _spmm(plan.adj_local, z)
        ctx.call = call = hctx.new_call()
        ctx.hctx, ctx.k, ctx.labels = hctx, k, hctx.comm.labels
        with hctx.comm.phase("forward exchange"):
            for ps, pr in ring(plan):
                halo = fetch(z, hctx, ps, pr, lparams if learned else None, k, call)
                if learned:
                    halo = hctx.comm.track(decode(halo, lparams[2], lparams[3], k))
                out += _spmm(plan.adj_remote[pr], halo)
                del halo
        # Sum aggregation is linear: its gradient needs no values, so only the learned codec keeps z (to encode
        # the rows again in backward and fetch the code it needs).
        ctx.save_for_backward(*((z, *lparams) if learned else ()))
        return out

    @staticmethod
    def backward(ctx, g):
        hctx, k = ctx.hctx, ctx.k
        z, *lparams = ctx.saved_tensors or (None,)
        plan, comm = hctx.plan, hctx.comm
        learned = len(lparams) > 0
        g = g.contiguous()
        gz = _spmm(plan.adj_local_t, g)
        gp = [torch.zeros_like(p) for p in lparams]
        for ps, pr in ring(plan):
            gh = _spmm(plan.adj_remote_t[pr], g)  # gradient of the halo from pr
            if learned:  # rematerialise: fetch pr's code again, then backprop through the decoder
                with comm.phase("re-fetch", within=ctx.labels):
                    code = fetch(z, hctx, ps, pr, lparams, k, ctx.call)
                gh = through_decoder(code, lparams, k, gh, gp)
            gsend = send_grad(hctx, ps, pr, gh, ctx.call, ctx.labels)
            idx = plan.send_idx[ps]
            if learned:
                gsend = through_encoder(z, idx, gsend, lparams, k, gp)
            gz.index_add_(0, idx, gsend)
        return (None, gz, *gp)


def sar_aggregate(z: torch.Tensor, hctx: HaloContext, codec: "LearnedCodec | None" = None) -> torch.Tensor:
    if hctx.learned:
        hctx.codec_latent = codec.latent(hctx.ratio)
        return _SARAggregate.apply(hctx, z, *codec.params())
    return _SARAggregate.apply(hctx, z)


def aggregate(z: torch.Tensor, hctx: HaloContext, codec: "LearnedCodec | None" = None) -> torch.Tensor:
    """``A z`` over the whole graph for this rank's rows (A normalised as the plan was built)."""
    if z.dim() != 2 or z.shape[0] != hctx.plan.num_local:
        raise ValueError(f"rank {hctx.plan.rank}: aggregate expects ({hctx.plan.num_local}, f) rows (this rank's "
                         f"nodes), got {list(z.shape)}")
    if hctx.learned and codec is None:
        raise ValueError("the learned codec needs the layer's LearnedCodec module")
    return (sar_aggregate if hctx.mode == "sar" else aggregate_all)(z, hctx, codec)
