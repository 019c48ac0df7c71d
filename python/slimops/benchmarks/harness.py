"""Shared benchmark machinery: timing calls, peak memory, metadata, reports.

The timing policy (interleaved rounds, minimum and median, the roofline) is the
runner's (:mod:`slimops.benchmarks.runner`); here :func:`time_calls` times
back-to-back calls, with a pair of ``torch.cuda.Event`` per call on CUDA and
``time.perf_counter`` on CPU.

Peak memory (:func:`peak_memory_call`):

* CUDA, ``cuda_max_allocated``: ``torch.cuda.max_memory_allocated`` during one
  call, above what was allocated before it (so the inputs are not counted, the
  outputs and every temporary are).
* CPU, ``rss_hwm``: growth of the process's resident-set high-water mark
  (``VmHWM``, reset through ``/proc/self/clear_refs``, after glibc's
  ``malloc_trim`` hands freed heap memory back) during one call, and at least
  the bytes of the tensors the call returns. An estimate: memory the allocator
  still holds and reuses is not counted.
* CPU, ``io_bytes`` (fallback where ``clear_refs`` cannot be written): the bytes
  of the call's inputs and outputs, not measured at all.
"""

from __future__ import annotations

import csv
import datetime
import functools
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

_T0 = time.perf_counter()


# ----------------------------------------------------------------------------- progress


def progress(msg: str) -> None:
    """One progress line on stderr, prefixed with the seconds since the run began."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def sync(device: "str | torch.device") -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- timing


def quantile(values: list, q: float) -> float:
    """Linear-interpolated quantile of a non-empty list (q in [0, 1])."""
    v = sorted(values)
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _time_calls_cpu(fn, n: int) -> list:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _time_calls_cuda(fn, n: int, device) -> list:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    torch.cuda.synchronize(device)
    for i in range(n):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize(device)
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def time_calls(fn, n: int, device) -> list:
    """Milliseconds of ``n`` back-to-back calls, one value per call."""
    if torch.device(device).type == "cuda":
        return _time_calls_cuda(fn, n, device)
    return _time_calls_cpu(fn, n)


# ----------------------------------------------------------------------------- memory


def _proc_status_kib(keys=("VmHWM", "VmRSS")) -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


@functools.lru_cache(maxsize=None)
def _rss_hwm_usable() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "VmHWM" in _proc_status_kib()
    except OSError:
        return False


def peak_memory_call(fn, device, io_bytes: int = 0) -> tuple:
    """Call ``fn()`` once; return (peak bytes, method name), see the module docstring."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return peak, "cuda_max_allocated"
    if _rss_hwm_usable():
        _malloc_trim()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _proc_status_kib()["VmRSS"]
        out = fn()
        peak = max(_proc_status_kib()["VmHWM"] - base, 0) * 1024
        peak = max(peak, tensor_bytes(out))
        del out
        return peak, "rss_hwm"
    fn()
    return io_bytes, "io_bytes"


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in ``obj`` (a tensor, or tuples / lists / objects with ``data`` and ``scales``)."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(tensor_bytes(o) for o in obj)
    return sum(tensor_bytes(getattr(obj, k)) for k in ("data", "scales") if hasattr(obj, k))


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _malloc_trim() -> None:
    """Hand freed heap memory back to the OS, so that reusing it shows up in the high-water mark (glibc)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


# ----------------------------------------------------------------------------- metadata


_BUILD_NAMES = itertools.count()


def native_build(path):
    """Another build of ``slimops._C``, the file at ``path``, loaded beside the installed one for A/B runs in one
    process, under a package name of its own per call: under one name Python would hand back the module it
    already loaded, and both columns would time the same build."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"slimops_build{next(_BUILD_NAMES)}._C", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def native_builds(paths) -> list:
    """[("this", slimops._C)] and, per path, ``(file name, native_build(path))``."""
    from .._backend import native_module

    return [("this", native_module("_C"))] + [(Path(path).name, native_build(path)) for path in paths]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_name()


def _version(dist: str) -> "str | None":
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> "str | None":
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                           timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment(devices) -> dict:
    """Date, machine, device names and versions for the header of every report."""
    import slimops

    info = slimops.info()
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "devices": {str(d): device_name(d) for d in devices},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "triton": info.get("triton") or _version("triton"),
            "slimops": slimops.__version__,
            "torchao": _version("torchao"),
        },
        "git_commit": _git_commit(),
        "slimops_backends": {f: {op: {d: e["runs"] for d, e in devs.items() if d in [torch.device(x).type for x in devices]}
                                     for op, devs in ops.items()} for f, ops in info["families"].items()},
        "cpu_features": info.get("cpu_features"),
    }
    if any(torch.device(d).type == "cuda" for d in devices):
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                      "memory_gib": round(props.total_memory / 2**30, 1),
                      "sm_count": props.multi_processor_count}
    return env


# ----------------------------------------------------------------------------- reports


def write_json(path: Path, meta: dict, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str) + "\n")
    return path


def write_csv(path: Path, rows: list, columns: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return path


def _fmt_cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        a = abs(v)
        return f"{v:.3g}" if a < 10 else f"{v:.1f}" if a < 1e4 else f"{v:.3e}"
    return str(v)


def format_table(rows: list, columns: list, headers: "list | None" = None) -> str:
    """A plain-text table of ``columns`` from ``rows`` (dicts)."""
    headers = headers or columns
    cells = [[_fmt_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in cells:
        out.append("  ".join(c.rjust(w) if i >= 1 and _is_num(c) else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


def _is_num(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def plot_bars(path: Path, rows: list, *, group_key, series_key: str, value_key: str, ylabel: str,
              title: str, hlines: "dict | None" = None, panel_key: str = "device") -> Path:
    """Grouped bar chart (one panel per ``panel_key`` value, log y), with optional dashed lines.

    ``group_key(row)`` names the x group, ``row[series_key]`` the bar within it;
    ``hlines`` maps a panel value to ``(y, label)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if isinstance(r.get(value_key), (int, float)) and r[value_key] > 0]
    panels = list(dict.fromkeys(r[panel_key] for r in rows)) or ["-"]
    ngroups = max([len({group_key(r) for r in rows if r[panel_key] == p}) for p in panels] + [1])
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8.0, 1.1 * ngroups + 2), 4.5 * len(panels)),
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        prow = [r for r in ok if r[panel_key] == panel]
        groups = list(dict.fromkeys(group_key(r) for r in rows if r[panel_key] == panel))
        series = list(dict.fromkeys(r[series_key] for r in rows if r[panel_key] == panel))
        width = 0.8 / max(len(series), 1)
        for si, s in enumerate(series):
            xs, ys = [], []
            for gi, g in enumerate(groups):
                for r in prow:
                    if r[series_key] == s and group_key(r) == g:
                        xs.append(gi + (si - (len(series) - 1) / 2) * width)
                        ys.append(r[value_key])
            ax.bar(xs, ys, width=width, label=s)
        if hlines and panel in hlines:
            y, label = hlines[panel]
            ax.axhline(y, linestyle="--", color="black", linewidth=1)
            ax.text(len(groups) - 0.5, y, f" {label}", va="bottom", ha="right", fontsize=8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} [{panel}]", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
