"""Shared test helpers: devices, backends, bit-exact comparison."""

from __future__ import annotations

import os

import torch

# Without a GPU, Triton kernels run in its interpreter on CPU tensors; this must be
# set before triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import slimops  # noqa: E402
from slimops._backend import native_module, triton_available

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cpu_backends() -> list:
    """Backends that can run on CPU tensors here; the missing ones are skipped with the reason."""
    out = [pytest.param("reference", id="reference")]
    out.append(pytest.param("native", id="native", marks=pytest.mark.skipif(
        native_module("_C") is None, reason="slimops._C not built (SLIMOPS_SKIP_NATIVE?)")))
    return out


def gpu_backends() -> list:
    reason = "no CUDA device here"
    return [
        pytest.param("triton", id="cuda-triton", marks=pytest.mark.skipif(
            not (torch.cuda.is_available() and triton_available()), reason=reason + " (or triton missing)")),
        pytest.param("native", id="cuda-native", marks=pytest.mark.skipif(
            not (torch.cuda.is_available() and native_module("_C_cuda") is not None),
            reason=reason + " (or slimops._C_cuda not built)")),
    ]


def assert_bits_equal(actual: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    """Bit-for-bit equality; NaNs compare equal whatever their payload (torch's own casts differ there)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    a, e = actual.detach().cpu(), expected.detach().cpu()
    if a.is_floating_point():
        nan_a, nan_e = torch.isnan(a), torch.isnan(e)
        assert torch.equal(nan_a, nan_e), f"{what}: NaN positions differ"
        ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        a = torch.where(nan_a, torch.zeros_like(a), a).view(ints)
        e = torch.where(nan_e, torch.zeros_like(e), e).view(ints)
    bad = (a != e).nonzero()
    if len(bad):
        first = [tuple(i.tolist()) for i in bad[:8]]
        raise AssertionError(f"{what}: {len(bad)} of {a.numel()} differ; first at {first}: "
                             f"actual {[a[i].item() for i in first]} expected {[e[i].item() for i in first]}")


@pytest.fixture
def backend_reset():
    """Clears any backend setting a test left behind (set_backend, or a use_backend block that raised)."""
    yield
    slimops._backend._current.clear()
    slimops._backend._default.clear()


def pytest_report_header(config):
    return f"slimops info: {slimops.info()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})"
