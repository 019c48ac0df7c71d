"""The MX microbenchmarks under pytest-benchmark, on small sizes.

Run with ``pytest bench/ --benchmark-only`` (add ``--benchmark-json=out.json`` to
keep the numbers). Not part of the plain test run: pytest's ``testpaths`` is
``tests/``. The cases and providers are those of ``slimops bench``
(``slimops.mx.bench``); a provider that cannot run a case is skipped with
the reason. Each benchmark's ``extra_info`` holds the bytes moved and GB/s.
"""

from __future__ import annotations

import pytest
import torch

from slimops.benchmarks.runner import CompileBudget, Skip
from slimops.mx import bench as bmx

SHAPE = (512, 1024)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
OP_FMTS = [(op, fmt) for op in bmx.OPS for fmt in bmx.DEFAULT_FMTS[op]]
BUDGET = CompileBudget(total_s=120.0)


@pytest.mark.parametrize("provider", bmx.PROVIDERS)
@pytest.mark.parametrize("dtype", bmx.DEFAULT_DTYPES)
@pytest.mark.parametrize("op,fmt", OP_FMTS, ids=[f"{o}-{f}" for o, f in OP_FMTS])
@pytest.mark.parametrize("device", DEVICES)
def test_mx(benchmark, device, op, fmt, dtype, provider):
    if provider not in bmx.SUITE.providers_for(device):
        pytest.skip(f"{provider} does not run on {device}")
    case = bmx.mx_case(device, op, fmt, dtype, SHAPE)
    inputs = bmx.make_inputs(case)
    try:
        fn, note = bmx.build(case, provider, inputs, BUDGET)
    except Skip as e:
        pytest.skip(str(e))

    if device == "cuda":
        def call():
            out = fn()
            torch.cuda.synchronize()
            return out
    else:
        call = fn

    benchmark.group = f"{device} {case.label}"
    if provider == "reference-eager":  # seconds per call on big inputs: few rounds
        benchmark.pedantic(call, rounds=3, warmup_rounds=1)
    else:
        benchmark(call)
    nbytes = bmx.bytes_moved(case)
    benchmark.extra_info.update(bytes_moved=nbytes, note=note,
                                gb_s=nbytes / benchmark.stats.stats.median / 1e9)
