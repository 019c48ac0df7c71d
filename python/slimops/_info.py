"""What is built and active: ``slimops.info()`` and ``python -m slimops info``."""

from __future__ import annotations

import platform

import torch

from . import _backend


def _device_types() -> list:
    # Asking torch.cuda.is_available() does not create a CUDA context.
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def family_table(device_types=None) -> dict:
    """Per family, op and device: the implementations declared, those built here, and what runs now."""
    out = {}
    for family, ops in _backend.families().items():
        out[family] = {}
        for op in ops:
            out[family][op] = {}
            for dev in device_types or ["cpu", "cuda"]:
                impls = _backend.declared(family, op, dev)
                entry = {"declared": list(impls), "built": [i for i in impls if _backend.built(i, dev)]}
                try:
                    entry["runs"] = _backend.resolve(family, op, dev)
                except RuntimeError as e:
                    entry["runs"] = f"error: {e}"
                out[family][op][dev] = entry
    return out


def info() -> dict:
    """Versions, native modules built, CPU features, and per family the backend each device runs now."""
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
        "cuda_available": torch.cuda.is_available(),
        "families": family_table(),
    }
    if _backend.triton_available():
        import triton

        out["triton"] = triton.__version__
    out["nvrtc"] = nvrtc_info()
    return out


def nvrtc_info() -> str:
    """What the 'nvrtc' backend (CUDA kernels compiled by NVRTC through CuPy) has here, in words."""
    why = _backend.cupy_status()
    if why is not None:
        return f"unavailable (CuPy with NVRTC: {why})"
    import cupy
    from cupy.cuda import nvrtc

    major, minor = nvrtc.getVersion()
    where = "usable on CUDA tensors" if torch.cuda.is_available() else "no CUDA device"
    return f"cupy {cupy.__version__}, NVRTC {major}.{minor}: {where}"


def format_info(d: dict) -> str:
    """``info()`` as text: one line per setting, then per family a table of op x device."""
    lines = []
    flat = {k: v for k, v in d.items() if k != "families"}
    width = max(len(k) for k in flat)
    lines += [f"{k:<{width}}  {v}" for k, v in flat.items()]
    for family, ops in d.get("families", {}).items():
        lines.append(f"\nfamily {family}: backends per op and device (declared; built here; runs now)")
        for op, devs in ops.items():
            cells = []
            for dev, e in devs.items():
                built = ",".join(e["built"]) or "-"
                cells.append(f"{dev}: [{','.join(e['declared']) or '-'}; {built}] -> {e['runs']}")
            lines.append(f"  {op:<20} " + "   ".join(cells))
    return "\n".join(lines)
