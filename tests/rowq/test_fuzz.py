"""Hypothesis fuzzing of rowq_quantize / rowq_dequantize against the reference, bit for bit, on every backend
that runs here: random shapes, widths, dtypes, seeds and edge values (NaN, ±Inf, ±0, subnormals, fp32's max,
constant rows, empty tensors).

CI runs ``SLIMOPS_FUZZ_EXAMPLES`` examples per test (default 60); the long run sets it to 10000 or more."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slimops
from slimops.rowq import reference as ref

from .test_ops import _backends

EXAMPLES = int(os.environ.get("SLIMOPS_FUZZ_EXAMPLES", "60"))
F32 = torch.finfo(torch.float32)
SPECIALS = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), F32.smallest_normal / 2**23, -F32.tiny / 2**23,
            F32.tiny, F32.max, -F32.max, 1.0, -1.0]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@st.composite
def rows(draw):
    n = draw(st.integers(0, 9))
    length = draw(st.integers(0, 70))
    seed = draw(st.integers(0, 2**31))
    x = torch.randn(n, length, generator=torch.Generator().manual_seed(seed)) * draw(st.sampled_from([1e-30, 1.0,
                                                                                                      1e30]))
    kind = draw(st.sampled_from(["random", "specials", "constant"]))
    if kind == "specials" and x.numel():
        k = draw(st.integers(1, max(1, x.numel() // 3)))
        idx = torch.randint(0, x.numel(), (k,), generator=torch.Generator().manual_seed(seed + 1))
        vals = torch.tensor([draw(st.sampled_from(SPECIALS)) for _ in range(k)])
        x.view(-1)[idx] = vals
    elif kind == "constant" and x.numel():
        x[:] = draw(st.sampled_from(SPECIALS))
    dtype = draw(st.sampled_from(DTYPES))
    return x.to(dtype), draw(st.sampled_from([2, 4, 8])), draw(st.booleans()), draw(st.integers(-2**63, 2**63 - 1))


@pytest.mark.parametrize("backend", _backends())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=rows())
def test_rowq_matches_the_reference_bit_for_bit(backend, case, backend_reset):
    x, bits, stochastic, seed = case
    with slimops.use_backend(backend):
        d, p = slimops.rowq.quantize(x, bits, stochastic, seed)
        y = slimops.rowq.dequantize(d, p, bits, x.shape[1], x.dtype)
    rd, rp = ref.quantize(x, bits, stochastic, seed)
    ry = ref.dequantize(rd, rp, bits, x.shape[1], x.dtype)
    assert torch.equal(d, rd)
    assert torch.equal(p.view(torch.int32), rp.view(torch.int32))
    assert torch.equal(y.view(torch.int16 if y.element_size() == 2 else torch.int32),
                       ry.view(torch.int16 if ry.element_size() == 2 else torch.int32))
