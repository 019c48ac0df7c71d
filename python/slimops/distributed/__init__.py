"""Distributed full-graph GNN training with compressed halo exchange (SAR + VARCO + AdaQP on slimops kernels).

* :mod:`.partition`: METIS / random / contiguous partitions and the halo plan.
* :mod:`.codecs`: wire codecs (none, MX through ``slimops::mx_quantize``, per-row
  stochastic int through ``slimops::rowq_quantize``), exact byte counts.
* :mod:`.comm`: point-to-point transport over torch.distributed with timeouts.
* :mod:`.exchange`: the exchange autograd functions (all at once, SAR) and :class:`.HaloContext`.
* :mod:`.ring`: SAR's ring steps (fetch a halo, send its gradient back), shared with :mod:`.attention`.
* :mod:`.learned`: VARCO's learned encoder / decoder codec.
* :mod:`.attention`: GAT over the partitioned graph (the fused op's partials and merge).
* :mod:`.faults`: faults injected on purpose (``--inject-fault``) to test how a launch fails.
* :mod:`.schedule`: fixed / exp / linear compression schedules and ladders.
* :mod:`.models`: GCN and GraphSAGE on the partitioned graph.
* :mod:`.train`: the ``torchrun -m slimops.distributed.train`` entry point.
"""

from __future__ import annotations

import torch

from . import schemas  # noqa: F401  (op schemas first)
from . import dispatch  # noqa: F401  (their kernels: reference, C++ CPU, Triton)
from .codecs import CODECS, IntCodec, MXCodec, WireCodec, get_codec
from .comm import Comm, HaloExchangeError, verify_plan
from .exchange import HaloContext, aggregate
from .learned import LearnedCodec
from .partition import HaloPlan, build_plan, partition
from .schedule import codec_at, ladder, ratio_at


def rowq_quantize(x, bits: int, stochastic: bool = True, seed: int = 0):
    """Per-row integer quantization (AdaQP): ``(data, params)``, see :mod:`.schemas`."""
    return torch.ops.slimops.rowq_quantize(x, bits, stochastic, seed)


def rowq_dequantize(data, params, bits: int, length: int, dtype=None):
    """Inverse of :func:`rowq_quantize`: ``min + code * scale`` per row, ``length`` elements."""
    return torch.ops.slimops.rowq_dequantize(data, params, bits, length, dtype or torch.float32)


__all__ = ["CODECS", "Comm", "HaloContext", "HaloExchangeError", "HaloPlan", "IntCodec", "LearnedCodec", "MXCodec",
           "WireCodec", "aggregate", "build_plan", "codec_at", "get_codec", "ladder", "partition", "ratio_at",
           "rowq_dequantize", "rowq_quantize", "verify_plan"]
