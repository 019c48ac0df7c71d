"""Which kernel runs an op: the user's choice of backend, and what is built.

Backends by name:

* ``"auto"`` (default): C++ on CPU; Triton, else CUDA C++, on CUDA; else the reference.
* ``"reference"``: the pure-PyTorch reference on every device.
* ``"native"``: the C++ kernels on CPU, the CUDA C++ kernels on CUDA.
* ``"triton"``: the Triton kernels (on CPU only under ``TRITON_INTERPRET=1``).

Choose with ``slimops.use_backend("native")`` (a context manager),
``slimops.set_backend(name)`` or the environment variable ``SLIMOPS_BACKEND``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os

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


def resolve(device_type: str) -> str:
    """The backend that runs on ``device_type`` now: 'reference', 'native' or 'triton'."""
    want = current_backend()
    if want == "reference":
        return "reference"
    if device_type == "cpu":
        if want == "triton":
            if not (triton_available() and triton_interpret()):
                raise RuntimeError("backend 'triton' on CPU tensors needs triton installed and TRITON_INTERPRET=1 "
                                   "set before triton is imported")
            return "triton"
        if native_module("_C") is not None:
            return "native"
        if want == "native":
            raise RuntimeError("backend 'native' was asked for, but slimops._C (the C++ CPU kernels) is not built; "
                               "reinstall without SLIMOPS_SKIP_NATIVE=1")
        return "reference"
    if device_type == "cuda":
        if want in ("auto", "triton") and triton_available():
            return "triton"
        if want in ("auto", "native") and native_module("_C_cuda") is not None:
            return "native"
        if want != "auto":
            raise RuntimeError(f"backend {want!r} was asked for on CUDA, but it is not available "
                               f"(triton importable: {triton_available()}, slimops._C_cuda built: "
                               f"{native_module('_C_cuda') is not None})")
        return "reference"
    return "reference"
