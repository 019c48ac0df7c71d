"""``slimops profile OP``: one op per provider under ``torch.profiler``.

For each provider (slimops' kernels for the device and the reference, by
default) the op runs once to warm up, then a few times under
``torch.profiler.profile`` (CPU and, on a GPU, CUDA activity, shapes and
memory recorded). Per provider it writes a chrome trace (open it in
``chrome://tracing`` or https://ui.perfetto.dev) and the key-averages table,
and prints the table. On a GPU a background thread samples the SM and memory
clocks, power, utilisation, temperature and memory use with NVML (pynvml,
package nvidia-ml-py) throughout, the profiled calls plus a sustained loop of
``--sample-s`` seconds, and writes the samples as CSV with a summary; without a
GPU that is skipped with a message. A summary of everything goes to
``<out>/profile_<op>_<fmt>_<dtype>_<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import torch

from . import harness
from . import mx as bmx

OP_NAMES = {"mx_quantize": "quantize", "mx_dequantize": "dequantize", "mx_fake_quantize": "fake_quantize"}


# ----------------------------------------------------------------------------- NVML


class NvmlSampler:
    """Samples one GPU with NVML every ``interval_s`` in a background thread (a context manager)."""

    FIELDS = ("t_s", "sm_clock_mhz", "mem_clock_mhz", "power_w", "gpu_util_pct", "mem_util_pct", "mem_used_mib",
              "temp_c")

    def __init__(self, device_index: int = 0, interval_s: float = 0.01):
        import pynvml

        self.nv = pynvml
        pynvml.nvmlInit()
        self.handle = self._handle(device_index)
        self.interval_s = interval_s
        self.samples: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="slimops-nvml", daemon=True)

    def _handle(self, index: int):
        nv = self.nv
        try:  # the torch device's UUID names the same GPU whatever CUDA_VISIBLE_DEVICES says
            uuid = str(torch.cuda.get_device_properties(index).uuid)
            return nv.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else "GPU-" + uuid)
        except Exception:
            return nv.nvmlDeviceGetHandleByIndex(index)

    def _sample(self, t0: float) -> dict:
        nv, h = self.nv, self.handle
        util = nv.nvmlDeviceGetUtilizationRates(h)
        return {"t_s": time.perf_counter() - t0,
                "sm_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
                "power_w": nv.nvmlDeviceGetPowerUsage(h) / 1e3,
                "gpu_util_pct": util.gpu, "mem_util_pct": util.memory,
                "mem_used_mib": nv.nvmlDeviceGetMemoryInfo(h).used / 2**20,
                "temp_c": nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)}

    def _loop(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.samples.append(self._sample(t0))
            except self.nv.NVMLError:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.nv.nvmlShutdown()
        return False

    def summary(self) -> dict:
        out = {"samples": len(self.samples), "interval_s": self.interval_s}
        for k in self.FIELDS[1:]:
            vals = [s[k] for s in self.samples]
            if vals:
                out[k] = {"min": min(vals), "median": statistics.median(vals), "max": max(vals)}
        return out


def nvml_sampler(device: str, interval_s: float):
    """An :class:`NvmlSampler` for ``device``, or (None, why not)."""
    if torch.device(device).type != "cuda":
        return None, f"{device} is not a GPU: skipping NVML sampling of clocks, power and memory"
    try:
        return NvmlSampler(torch.device(device).index or 0, interval_s), ""
    except Exception as e:
        return None, f"NVML unavailable ({type(e).__name__}: {e}): skipping clocks, power and memory sampling"


# ----------------------------------------------------------------------------- profiling


def profile_provider(case: bmx.Case, provider: str, inputs: dict, out: Path, *, iters: int, sample_s: float,
                     interval_s: float, row_limit: int, budget: bmx.CompileBudget) -> dict:
    from torch.profiler import ProfilerActivity, profile, record_function

    res = {"provider": provider, "status": "ok", "note": ""}
    try:
        fn, note = bmx.build(case, provider, inputs, budget)
    except bmx.Skip as e:
        res.update(status="skipped", note=str(e))
        harness.progress(f"  {provider}: skipped: {e}")
        return res
    res["note"] = note
    t0 = time.perf_counter()
    fn()  # warmup
    harness.sync(case.device)
    first_s = time.perf_counter() - t0
    n = iters if first_s < 0.25 else min(iters, 2)
    cuda = case.device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sampler, why = nvml_sampler(case.device, interval_s)
    if sampler is None:
        harness.progress(f"  {provider}: {why}")
        res["nvml"] = why
    stem = f"{case.op}_{case.fmt}_{case.dtype}_{case.device}_{provider}"
    if sampler is not None:
        sampler.__enter__()
    try:
        with profile(activities=activities, record_shapes=True, profile_memory=True) as prof:
            walls = []
            for _ in range(n):
                t1 = time.perf_counter()
                with record_function(f"{provider}::{case.op}"):
                    fn()
                harness.sync(case.device)
                walls.append((time.perf_counter() - t1) * 1e3)
        if sampler is not None:  # sustained load, for clocks and power that mean something
            t_end = time.perf_counter() + sample_s
            while time.perf_counter() < t_end:
                fn()
                harness.sync(case.device)
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    trace = out / f"trace_{stem}.json"
    prof.export_chrome_trace(str(trace))
    sort_by = "self_device_time_total" if cuda else "self_cpu_time_total"
    ka = prof.key_averages()
    text = ka.table(sort_by=sort_by, row_limit=row_limit)
    (out / f"key_averages_{stem}.txt").write_text(text + "\n")
    print(f"\n=== {case.label} on {case.device}, provider {provider} ({n} calls, "
          f"median {statistics.median(walls):.3f} ms per call under the profiler) ===")
    print(text)
    top = sorted(ka, key=lambda e: getattr(e, "self_device_time_total" if cuda else "self_cpu_time_total", 0),
                 reverse=True)[:10]
    res.update(calls=n, first_call_ms=first_s * 1e3, median_ms_profiled=statistics.median(walls),
               trace=str(trace), key_averages=str(out / f"key_averages_{stem}.txt"),
               top_ops=[{"name": e.key, "count": e.count, "self_cpu_us": e.self_cpu_time_total,
                         "self_device_us": getattr(e, "self_device_time_total", 0)} for e in top])
    if sampler is not None:
        csv_path = harness.write_csv(out / f"nvml_{stem}.csv", sampler.samples, list(NvmlSampler.FIELDS))
        res["nvml"] = sampler.summary()
        res["nvml_csv"] = str(csv_path)
        s = res["nvml"]
        if "sm_clock_mhz" in s:
            print(f"NVML ({s['samples']} samples): SM clock {s['sm_clock_mhz']['median']:.0f} MHz "
                  f"(min {s['sm_clock_mhz']['min']:.0f}), memory clock {s['mem_clock_mhz']['median']:.0f} MHz, "
                  f"power {s['power_w']['median']:.0f} W (max {s['power_w']['max']:.0f}), "
                  f"memory used {s['mem_used_mib']['max']:.0f} MiB (max), "
                  f"temperature {s['temp_c']['max']:.0f} C (max)")
    return res


def run(op: str, fmt: str, dtype: str, device: str, *, providers=None, quick=False, shape=None, iters=5,
        sample_s=2.0, interval_s=0.01, row_limit=15, out: Path = Path("results/profile"),
        compile_budget_s=180.0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    case = bmx.Case(device, op, fmt, dtype, tuple(shape or bmx.SHAPES[(device, quick)]))
    plist = providers or [p for p in bmx.providers_for(device) if p.startswith("slimops-")] + ["reference-eager"]
    harness.progress(f"profiling {case.label} on {device}: {', '.join(plist)}")
    inputs = bmx.make_inputs(case)
    budget = bmx.CompileBudget(compile_budget_s)
    results = [profile_provider(case, p, inputs, out, iters=iters, sample_s=0.2 if quick else sample_s,
                                interval_s=interval_s, row_limit=row_limit, budget=budget) for p in plist]
    summary = {"op": f"mx_{op}", "fmt": fmt, "dtype": dtype, "device": device, "shape": list(case.shape),
               "env": harness.environment([device]), "providers": results}
    path = out / f"profile_{op}_{fmt}_{dtype}_{device}.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["path"] = str(path)
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("op", choices=sorted(OP_NAMES) + sorted(OP_NAMES.values()),
                   help="the op to profile: mx_quantize, mx_dequantize or mx_fake_quantize")
    p.add_argument("--fmt", default="mxfp8", help="MX format (default mxfp8)")
    p.add_argument("--dtype", default="float32", choices=sorted(bmx.DTYPES), help="input/output dtype")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to run (all: CPU, and CUDA when present; default)")
    p.add_argument("--out", default="results/profile", help="folder for traces and tables (default results/profile)")
    p.add_argument("--providers", nargs="+", help=f"from {', '.join(bmx.PROVIDERS)} "
                                                  "(default: slimops' kernels and reference-eager)")
    p.add_argument("--quick", action="store_true", help="small size (for tests and smoke runs)")
    p.add_argument("--shape", help="ROWSxCOLS (default 4096x4096 on CPU, 16384x16384 on CUDA)")
    p.add_argument("--iters", type=int, default=5, help="profiled calls per provider (2 for slow ones)")
    p.add_argument("--sample-s", type=float, default=2.0, help="seconds of sustained load sampled by NVML (GPU)")
    p.add_argument("--interval-ms", type=float, default=10.0, help="NVML sampling interval")
    p.add_argument("--row-limit", type=int, default=15, help="rows of the key-averages table")


def main(args: argparse.Namespace) -> int:
    from ..mx import get_format

    op = OP_NAMES.get(args.op, args.op)
    try:
        get_format(args.fmt)
    except ValueError as e:
        raise SystemExit(f"slimops profile: {e}") from None
    providers = bmx._split(args.providers)
    if providers and set(providers) - set(bmx.PROVIDERS):
        raise SystemExit(f"slimops profile: --providers: unknown {sorted(set(providers) - set(bmx.PROVIDERS))}")
    shape = bmx.parse_shape(args.shape, "profile")
    ok = False
    for device in bmx.devices_from(args.device):
        s = run(op, args.fmt, args.dtype, device, providers=providers, quick=args.quick, shape=shape,
                iters=args.iters, sample_s=args.sample_s, interval_s=args.interval_ms / 1e3,
                row_limit=args.row_limit, out=Path(args.out))
        print(f"\nsummary: {s['path']}")
        for r in s["providers"]:
            if r["status"] == "ok":
                ok = True
                print(f"  {r['provider']:<18} {r['median_ms_profiled']:10.3f} ms/call (profiled)  trace {r['trace']}")
            else:
                print(f"  {r['provider']:<18} {r['status']}: {r['note']}")
    return 0 if ok else 1
