"""Benchmarks and profiler of slimops: ``slimops bench [FAMILY ...]`` and ``slimops profile FAMILY``.

* :mod:`slimops.benchmarks.runner`: the runner every family's suite plugs into
  (interleaved rounds, minimum and median, roofline, forward / backward / full
  modes, reports).
* :mod:`slimops.benchmarks.harness`: timing calls, peak memory, machine and
  version metadata, the JSON / CSV / PNG writers.
* :mod:`slimops.benchmarks.profile`: one suite's case per provider under
  ``torch.profiler`` (chrome traces), with NVML sampling on a GPU.
* The suites themselves live with their family (``slimops/<family>/bench.py``)
  and are listed in :data:`SUITES` (one line per family).

Nothing here is imported by ``import slimops``; matplotlib and pynvml are only
imported when a report is plotted or a GPU is sampled.
"""

from __future__ import annotations

import importlib

# family -> the module holding its suite (an instance named SUITE of runner.Suite)
SUITES = {
    "mx": "slimops.mx.bench",
    "slicescale": "slimops.slicescale.bench",
    "gat": "slimops.gat.bench",
    "rowq": "slimops.rowq.bench",
    "gatv2": "slimops.gat.v2_bench",
    "distributed": "slimops.distributed.bench",
    "mxgemm": "slimops.mxgemm.bench",
}


def load_suite(family: str):
    """The :class:`~slimops.benchmarks.runner.Suite` of ``family``."""
    if family not in SUITES:
        raise ValueError(f"unknown benchmark family {family!r}; expected one of {sorted(SUITES)}")
    return importlib.import_module(SUITES[family]).SUITE
