"""Helpers for slimops' tests (and users' tests of their own kernels): devices, backends, bit-exact comparison.

Importing this module imports pytest; ``import slimops`` does not import it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ._backend import cupy_status, native_module, triton_available
from ._info import info

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def cpu_backends() -> list:
    """Backends that can run on CPU tensors here; the missing ones are skipped with the reason."""
    out = [pytest.param("reference", id="reference")]
    out.append(pytest.param("native", id="native", marks=pytest.mark.skipif(
        native_module("_C") is None, reason="slimops._C not built (SLIMOPS_SKIP_NATIVE?)")))
    return out


def gpu_backends(nvrtc: bool = True) -> list:
    """The CUDA backends (Triton, CUDA C++, and with ``nvrtc`` the same CUDA C++ compiled by NVRTC
    through CuPy: the MX family's), each skipped with the reason when it cannot run here."""
    reason = "no CUDA device here"
    out = [
        pytest.param("triton", id="cuda-triton", marks=pytest.mark.skipif(
            not (torch.cuda.is_available() and triton_available()), reason=reason + " (or triton missing)")),
        pytest.param("native", id="cuda-native", marks=pytest.mark.skipif(
            not (torch.cuda.is_available() and native_module("_C_cuda") is not None),
            reason=reason + " (or slimops._C_cuda not built)")),
    ]
    if nvrtc:
        out.append(pytest.param("nvrtc", id="cuda-nvrtc", marks=pytest.mark.skipif(
            not (torch.cuda.is_available() and cupy_status() is None),
            reason="needs CUDA and CuPy (with NVRTC) for backend 'nvrtc'")))
    return out


def device_backends() -> list:
    """(device, backend) pairs: the CPU backends, then the CUDA ones."""
    out = [pytest.param("cpu", p.values[0], id=f"cpu-{p.id}", marks=p.marks) for p in cpu_backends()]
    out += [pytest.param("cuda", p.values[0], id=p.id, marks=p.marks) for p in gpu_backends()]
    return out


def skip_if_default_isa(isa: str) -> None:
    """Skips a test that reruns checks in a subprocess under ``SLIMOPS_CPU_ISA=isa`` when ``isa`` is the one this
    process already runs (none set, and it is the best this CPU has): the tests of this run covered it."""
    features = info()["cpu_features"]
    if not os.environ.get("SLIMOPS_CPU_ISA") and features.get("isa") == isa == features.get("isa_detected"):
        pytest.skip(f"{isa} is this CPU's best instruction set: this run's other tests ran its kernels")


def assert_bits_equal(actual: torch.Tensor, expected: torch.Tensor, what: str = "", *, nan_bits: bool = True) -> None:
    """Bit-for-bit equality, NaN payloads included (slimops writes the canonical quiet NaN on every
    backend); ``nan_bits=False`` lets any NaN equal any NaN (for a peer library's output)."""
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    a, e = actual.detach().cpu(), expected.detach().cpu()
    if a.is_floating_point():
        nan_a, nan_e = torch.isnan(a), torch.isnan(e)
        assert torch.equal(nan_a, nan_e), f"{what}: NaN positions differ"
        ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        if not nan_bits:
            a, e = torch.where(nan_a, torch.zeros_like(a), a), torch.where(nan_e, torch.zeros_like(e), e)
        a, e = a.contiguous().view(ints), e.contiguous().view(ints)
    bad = (a != e).nonzero()
    if len(bad):
        first = [tuple(i.tolist()) for i in bad[:8]]
        raise AssertionError(f"{what}: {len(bad)} of {a.numel()} differ; first at {first}: "
                             f"actual {[hex(a[i].item()) for i in first]} expected {[hex(e[i].item()) for i in first]}")


def run_cli(args: list, cwd, timeout: float = 150, expect: int = 0) -> subprocess.CompletedProcess:
    """``python -m slimops ARGS`` in a subprocess; asserts its exit status is ``expect``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "slimops", *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == expect, f"exit {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    return r



class OpLog(TorchDispatchMode):
    """Records the name of every op that reaches the dispatcher while it is active (``ops``): e.g. to check
    that a layer calls ``slimops.mx_linear`` or ``slimops.gat_forward``."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))
