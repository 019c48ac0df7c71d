"""Which kernel runs an op: the user's choice of backend, what each family has, and what is built.

Backends by name:

* ``"auto"`` (default): per op and device, the first implementation in the
  family's table (:func:`register_family`) that is built here; else the reference.
* ``"reference"``: the pure-PyTorch reference on every device.
* ``"native"``: the C++ kernels on CPU, the CUDA C++ kernels on CUDA.
* ``"triton"``: the Triton kernels (on CPU only under ``TRITON_INTERPRET=1``).

Choose with ``slimops.use_backend("native")`` (a context manager),
``slimops.set_backend(name)`` or the environment variable ``SLIMOPS_BACKEND``.

Each family declares, per op and device type, the implementations it has
(``register_family``); the op's kernels ask :func:`resolve` which one runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from typing import Mapping

import torch

BACKENDS = ("auto", "reference", "native", "triton")
_current: list[str] = []


def _validate(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


def current_backend() -> str:
    if _current:
        return _current[-1]
    if _default:
        return _default[0]
    return _validate(os.environ.get("SLIMOPS_BACKEND", "auto"))


_default: list[str] = []


def set_backend(name: str) -> None:
    """Select the backend for the rest of the process (overrides ``SLIMOPS_BACKEND``)."""
    _default[:] = [_validate(name)]


@contextlib.contextmanager
def use_backend(name: str):
    """Select the backend inside a block: ``with slimops.use_backend("triton"): ...``."""
    _current.append(_validate(name))
    try:
        yield
    finally:
        _current.pop()


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


def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"



IMPLEMENTATIONS = ("native", "triton")
# family -> op -> device type -> {dtype or None: implementations, in the order auto prefers them}
_FAMILIES: dict = {}


def register_family(family: str, ops: Mapping[str, Mapping[str, object]]) -> None:
    """Declare the implementations ``family`` has, besides the reference (which every op has).

    ``ops[op][device_type]`` is a tuple of implementations from ``("native",
    "triton")`` in the order ``auto`` prefers them, or a dict from a
    ``torch.dtype`` (``None``: every other dtype) to such a tuple.
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
    return False


def _missing(impl: str, device_type: str) -> str:
    if impl == "native":
        mod = {"cpu": "slimops._C (the C++ CPU kernels)", "cuda": "slimops._C_cuda (the CUDA C++ kernels)"}
        return (f"{mod.get(device_type, 'no native module for ' + device_type)} is not built; "
                "reinstall without SLIMOPS_SKIP_NATIVE=1 / SLIMOPS_SKIP_CUDA=1")
    if device_type == "cpu":
        return "backend 'triton' on CPU tensors needs triton installed and TRITON_INTERPRET=1 set before " \
               "triton is imported"
    return f"triton is not importable (triton importable: {triton_available()})"


def resolve(family: str, op: str, device_type: str, dtype: "torch.dtype | None" = None) -> str:
    """What runs ``family``'s ``op`` on ``device_type`` now: 'reference', 'native' or 'triton'.

    ``auto`` takes the first declared implementation that is built, else the
    reference; an explicit choice that cannot run raises RuntimeError saying why.
    Triton on CPU tensors runs only when asked for (under ``TRITON_INTERPRET=1``).
    """
    want = current_backend()
    if want == "reference":
        return "reference"
    impls = declared(family, op, device_type, dtype)
    if want == "auto":
        for impl in impls:
            if impl == "triton" and device_type == "cpu":
                continue  # the interpreter is a test vehicle, never picked by auto
            if built(impl, device_type):
                return impl
        return "reference"
    if want not in impls:
        raise RuntimeError(f"backend {want!r} was asked for, but {family} has no {want} implementation of "
                           f"{op} on {device_type} (it has: {', '.join(impls) or 'only the reference'})")
    if not built(want, device_type):
        raise RuntimeError(f"backend {want!r} was asked for on {device_type}, but " + _missing(want, device_type))
    return want
