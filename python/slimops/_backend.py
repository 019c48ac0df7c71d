"""Which kernel runs an op: the user's choice of backend, what each family has, and what is built.

Backends by name:

* ``"auto"`` (default): per op and device, the first implementation in the
  family's table (:func:`register_family`) that is built here; else the reference.
* ``"reference"``: the pure-PyTorch reference on every device.
* ``"native"``: the C++ kernels on CPU, the CUDA C++ kernels on CUDA.
* ``"triton"``: the Triton kernels (on CPU only under ``TRITON_INTERPRET=1``).
* ``"nvrtc"``: the CUDA C++ kernels compiled at first use by NVRTC through CuPy (CUDA
  tensors; for installs without nvcc, where ``slimops._C_cuda`` is not built).

Choose with ``slimops.use_backend("native")`` (a context manager),
``slimops.set_backend(name)`` or the environment variable ``SLIMOPS_BACKEND``.

Each family declares, per op and device type, the implementations it has
(``register_family``); the op's kernels ask :func:`resolve` which one runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
from typing import Mapping

import torch

BACKENDS = ("auto", "reference", "native", "triton", "nvrtc")
# The selection of use_backend blocks: context-local (each thread and each asyncio task
# sees its own), so one thread's block never changes what another thread's ops run.
_selected: contextvars.ContextVar = contextvars.ContextVar("slimops_backend", default=None)
_default: list[str] = []  # set_backend: the process-wide default


def _validate(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


def current_backend() -> str:
    """The backend selected here: the innermost ``use_backend`` block of this thread / task, else
    ``set_backend``'s, else ``SLIMOPS_BACKEND``, else ``"auto"``."""
    sel = _selected.get()
    if sel is not None:
        return sel
    if _default:
        return _default[0]
    return _validate(os.environ.get("SLIMOPS_BACKEND", "auto"))


def set_backend(name: str) -> None:
    """Select the backend for the rest of the process, in every thread (overrides ``SLIMOPS_BACKEND``)."""
    _default[:] = [_validate(name)]


@contextlib.contextmanager
def use_backend(name: str):
    """Select the backend inside a block: ``with slimops.use_backend("triton"): ...``.

    The selection is context-local (``contextvars``): it holds for the thread or
    asyncio task that entered the block, not for others. Autograd runs backward
    on threads of its own, which do not see it: an op whose backward runs a
    kernel records the backend it resolved in forward and re-enters it there
    (``with use_backend(ctx.backend)``). A generator suspended inside the block
    keeps the selection active for its caller until it resumes and leaves, as
    with any context manager.
    """
    token = _selected.set(_validate(name))
    try:
        yield
    finally:
        _selected.reset(token)


@functools.lru_cache(maxsize=None)
def native_module(name: str):
    """``slimops._C`` or ``slimops._C_cuda``, or None when it was not built."""
    try:
        return importlib.import_module(f"slimops.{name}")
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def cupy_status() -> "str | None":
    """None when CuPy imports and its NVRTC loads, else why not (the nvrtc backend needs both)."""
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except Exception as e:  # ImportError, or CuPy without a usable libnvrtc
        return f"{type(e).__name__}: {e}"
    return None


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"



IMPLEMENTATIONS = ("native", "triton", "nvrtc")
# family -> op -> device type -> {dtype or None: implementations, in the order auto prefers them}
_FAMILIES: dict = {}
# family -> device type -> the implementations auto may pick there (absent: every declared one)
_AUTO: dict = {}


def register_family(family: str, ops: Mapping[str, Mapping[str, object]],
                    auto: "Mapping[str, tuple] | None" = None) -> None:
    """Declare the implementations ``family`` has, besides the reference (which every op has).

    ``ops[op][device_type]`` is a tuple of implementations from ``("native",
    "triton", "nvrtc")`` in the order ``auto`` prefers them, or a dict from a
    ``torch.dtype`` (``None``: every other dtype) to such a tuple. ``auto[device_type]``,
    when given, limits what ``auto`` picks on that device (the others still run when
    selected): a kernel measured slower than the reference is declared but not preferred.
    """
    table = {}
    for op, devices in ops.items():
        table[op] = {}
        for device_type, impls in devices.items():
            per_dtype = dict(impls) if isinstance(impls, Mapping) else {None: impls}
            for dtype, names in per_dtype.items():
                bad = [n for n in names if n not in IMPLEMENTATIONS]
                if bad:
                    raise ValueError(f"register_family({family!r}): {op} on {device_type}: unknown "
                                     f"implementations {bad}; expected from {IMPLEMENTATIONS}")
                per_dtype[dtype] = tuple(names)
            table[op][device_type] = per_dtype
    _FAMILIES[family] = table
    _AUTO[family] = {d: tuple(names) for d, names in (auto or {}).items()}


def families() -> dict:
    """The registered families' tables (family -> op -> device -> {dtype: implementations})."""
    return _FAMILIES


def declared(family: str, op: str, device_type: str, dtype: "torch.dtype | None" = None) -> tuple:
    """The implementations ``family`` declares for ``op`` on ``device_type`` (and ``dtype``)."""
    try:
        per_dtype = _FAMILIES[family][op].get(device_type, {})
    except KeyError:
        raise ValueError(f"unknown op {family}/{op}; registered: "
                         f"{ {f: sorted(t) for f, t in _FAMILIES.items()} }") from None
    return per_dtype.get(dtype, per_dtype.get(None, ()))


def built(impl: str, device_type: str) -> bool:
    """Whether implementation ``impl`` can run on ``device_type`` tensors in this process."""
    if impl == "native":
        return native_module({"cpu": "_C", "cuda": "_C_cuda"}.get(device_type, "")) is not None
    if impl == "triton":
        return triton_available() and (device_type == "cuda" or (device_type == "cpu" and triton_interpret()))
    if impl == "nvrtc":  # CUDA tensors only; a CUDA device first (cheap), then CuPy
        return device_type == "cuda" and torch.cuda.is_available() and cupy_status() is None
    return False


def _missing(impl: str, device_type: str) -> str:
    if impl == "native":
        mod = {"cpu": "slimops._C (the C++ CPU kernels)", "cuda": "slimops._C_cuda (the CUDA C++ kernels)"}
        return (f"{mod.get(device_type, 'no native module for ' + device_type)} is not built; "
                "reinstall without SLIMOPS_SKIP_NATIVE=1 / SLIMOPS_SKIP_CUDA=1")
    if impl == "nvrtc":
        if device_type != "cuda":
            return f"backend 'nvrtc' compiles CUDA kernels: it runs on CUDA tensors only, not {device_type}"
        if not torch.cuda.is_available():
            return "backend 'nvrtc' needs a CUDA device, and torch sees none (torch.cuda.is_available() is False)"
        return (f"backend 'nvrtc' needs CuPy with NVRTC (pip install cupy-cuda12x or cupy-cuda13x, matching "
                f"the driver): {cupy_status()}")
    if device_type == "cpu":
        return "backend 'triton' on CPU tensors needs triton installed and TRITON_INTERPRET=1 set before " \
               "triton is imported"
    return f"triton is not importable (triton importable: {triton_available()})"


def resolve(family: str, op: str, device_type: str, dtype: "torch.dtype | None" = None) -> str:
    """What runs ``family``'s ``op`` on ``device_type`` now: 'reference', 'native', 'triton' or 'nvrtc'.

    ``auto`` takes the first declared implementation that is built, else the
    reference; an explicit choice that cannot run raises RuntimeError saying why.
    Triton on CPU tensors runs only when asked for (under ``TRITON_INTERPRET=1``).
    """
    want = current_backend()
    if want == "reference":
        return "reference"
    impls = declared(family, op, device_type, dtype)
    if want == "auto":
        allowed = _AUTO.get(family, {}).get(device_type)
        for impl in impls:
            if impl == "triton" and device_type == "cpu":
                continue  # the interpreter is a test vehicle, never picked by auto
            if allowed is not None and impl not in allowed:
                continue  # declared, but not preferred on this device (register_family's auto)
            if built(impl, device_type):
                return impl
        return "reference"
    if want not in impls:
        hint = f"; {_missing(want, device_type)}" if want == "nvrtc" and device_type != "cuda" else ""
        raise RuntimeError(f"backend {want!r} was asked for, but {family} has no {want} implementation of "
                           f"{op} on {device_type} (it has: {', '.join(impls) or 'only the reference'}){hint}")
    if not built(want, device_type):
        raise RuntimeError(f"backend {want!r} was asked for on {device_type}, but " + _missing(want, device_type))
    return want
