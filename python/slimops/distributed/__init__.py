"""Distributed full-graph GNN training with compressed halo exchange (SAR + VARCO + AdaQP on slimops kernels).

* :mod:`.partition`: METIS / random / contiguous partitions and the halo plan.
* :mod:`.codecs`: wire codecs (none, MX through ``slimops::mx_quantize``, per-row
  stochastic int through ``slimops::rowq_quantize``: the :mod:`slimops.rowq` family), exact byte counts.
* :mod:`.comm`: point-to-point transport over torch.distributed with timeouts.
* :mod:`.exchange`: the exchange autograd functions (all at once, SAR) and :class:`.HaloContext`.
* :mod:`.ring`: SAR's ring steps (fetch a halo, send its gradient back), shared with :mod:`.attention`.
* :mod:`.learned`: VARCO's learned encoder / decoder codec.
* :mod:`.attention`: GAT and GATv2 over the partitioned graph (the fused ops' partials and merge).
* :mod:`.faults`: faults injected on purpose (``--inject-fault``) to test how a launch fails.
* :mod:`.schedule`: fixed / exp / linear compression schedules and ladders.
* :mod:`.models`: GCN, GraphSAGE, GAT and GATv2 on the partitioned graph.
* :mod:`.train`: the ``torchrun -m slimops.distributed.train`` entry point.
"""

from __future__ import annotations

from .codecs import CODECS, IntCodec, MXCodec, WireCodec, get_codec
from .comm import Comm, HaloExchangeError, verify_plan
from .exchange import HaloContext, aggregate
from .learned import LearnedCodec
from .partition import HaloPlan, build_plan, partition
from .schedule import codec_at, ladder, ratio_at


__all__ = ["CODECS", "Comm", "HaloContext", "HaloExchangeError", "HaloPlan", "IntCodec", "LearnedCodec", "MXCodec",
           "WireCodec", "aggregate", "build_plan", "codec_at", "get_codec", "ladder", "partition", "ratio_at",
           "verify_plan"]
