"""SAR's ring steps: the point-to-point halo moves that :mod:`.exchange` and :mod:`.attention` build on.

Step k of a ring sends to rank + k and receives from rank - k, so every pair of
ranks exchanges once per pass and only one peer's halo is alive at a time.
:func:`fetch` moves the forward rows (its re-run in backward, with the same
exchange id, gets the very same bits: rematerialisation); :func:`send_grad`
moves the halo gradients back to their owners.
"""

from __future__ import annotations

import torch

from .halo import HaloContext
from .learned import encode
from .partition import HaloPlan


def ring(plan: HaloPlan):
    """SAR's ring order: step k sends to rank + k and receives from rank - k, ``(send to, receive from)``."""
    r, w = plan.rank, plan.world
    for k in range(1, w):
        yield (r + k) % w, (r - k) % w  # send to, receive from


def fetch(z, hctx: HaloContext, ps: int, pr: int, lparams, k: int, call: int) -> torch.Tensor:
    """One ring step of exchange ``call``'s forward: send ``ps`` its rows, return the (encoded-space) rows from
    ``pr``. Fetching again with the same ``call`` (rematerialisation) gets the very same bits. Run it inside a
    ``comm.phase("forward exchange")`` or ``("re-fetch")``."""
    plan, comm, codec = hctx.plan, hctx.comm, hctx.wire
    s = z[plan.send_idx[ps]]
    if lparams is not None:
        s = encode(s, lparams[0], lparams[1], k)
    f = s.shape[1]
    codec.check(s, len(plan.send_idx[ps]), f, f"rank {plan.rank} -> {ps}")
    bufs = comm.sendrecv({ps: codec.encode(s, hctx.wire_seed(call, ps))}, {pr: codec.nbytes(len(plan.recv_ids[pr]), f)},
                         z.device, shapes={ps: tuple(s.shape)}, recv_shapes={pr: (len(plan.recv_ids[pr]), f)})
    return comm.track(codec.decode(bufs[pr], len(plan.recv_ids[pr]), f))


def send_grad(hctx: HaloContext, ps: int, pr: int, gh: torch.Tensor, call: int, labels: tuple) -> torch.Tensor:
    """One ring step of exchange ``call``'s backward: send ``pr`` the gradient ``gh`` of its halo (backward
    codec); return the gradient of the rows this rank sent ``ps``. ``labels``: the forward's phase."""
    plan, comm, bwd = hctx.plan, hctx.comm, hctx.bwd_wire
    f = gh.shape[1]
    with comm.phase("backward exchange", within=labels):
        bufs = comm.sendrecv({pr: bwd.encode(gh.contiguous(), hctx.wire_seed(call, pr, True))},
                             {ps: bwd.nbytes(len(plan.send_idx[ps]), f)}, gh.device,
                             shapes={pr: tuple(gh.shape)}, recv_shapes={ps: (len(plan.send_idx[ps]), f)})
    return bwd.decode(bufs[ps], len(plan.send_idx[ps]), f)
