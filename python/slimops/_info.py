"""What is built and active: ``slimops.info()`` and ``python -m slimops info``."""

from __future__ import annotations

import platform

import torch

from . import _backend


def info() -> dict:
    """Versions, native modules built, CPU features, and the backend each device runs now."""
    cpu_mod = _backend.native_module("_C")
    cuda_mod = _backend.native_module("_C_cuda")
    out = {
        "slimops": __import__("slimops").__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "triton": None,
        "native_cpu_built": cpu_mod is not None,
        "native_cuda_built": cuda_mod is not None,
        "cpu_features": dict(cpu_mod.cpu_features()) if cpu_mod is not None else {},
        "backend_setting": _backend.current_backend(),
        "active": {"cpu": _backend.resolve("cpu")},
    }
    if _backend.triton_available():
        import triton

        out["triton"] = triton.__version__
    # Asking torch.cuda.is_available() does not create a CUDA context.
    if torch.cuda.is_available():
        out["active"]["cuda"] = _backend.resolve("cuda")
    return out


def format_info(d: dict) -> str:
    width = max(len(k) for k in d)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in d.items())
