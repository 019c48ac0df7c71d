"""``slimops profile FAMILY``: one case of a family's benchmark suite, per provider, under ``torch.profiler``.

The case is the first the suite's options select (``slimops profile mx --ops
quantize --fmts mxfp8``; ``slimops profile mx_quantize`` names the op directly).
For each provider (by default every provider of the suite but the compiled
ones) the case runs once to warm up, then a few times under
``torch.profiler.profile`` (CPU and, on a GPU, CUDA activity, shapes and
memory recorded). Per provider it writes a chrome trace (open it in
``chrome://tracing`` or https://ui.perfetto.dev) and the key-averages table,
and prints the table. On a GPU a background thread samples the SM and memory
clocks, power, utilisation, temperature and memory use with NVML (pynvml,
package nvidia-ml-py) throughout, the profiled calls plus a sustained loop of
``--sample-s`` seconds, and writes the samples as CSV with a summary; without a
GPU that is skipped with a message. A summary of everything goes to
``<out>/profile_<family>_<case>_<device>.json``.
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
from .runner import CompileBudget, Skip, with_mode


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


def _stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text).strip("_")


def profile_provider(suite, case, provider: str, inputs: dict, out: Path, *, iters: int, sample_s: float,
                     interval_s: float, row_limit: int, budget: CompileBudget) -> dict:
    from torch.profiler import ProfilerActivity, profile, record_function

    res = {"provider": provider, "status": "ok", "note": ""}
    try:
        fn, note = suite.build(case, provider, inputs, budget)
        fn = with_mode(fn, case.mode)
    except Skip as e:
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
    stem = _stem(f"{suite.name}_{case.label}_{case.device}_{provider}")
    if sampler is not None:
        sampler.__enter__()
    try:
        with profile(activities=activities, record_shapes=True, profile_memory=True) as prof:
            walls = []
            for _ in range(n):
                t1 = time.perf_counter()
                with record_function(f"{provider}::{suite.name}"):
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
    print(f"\n=== {suite.name}: {case.label} on {case.device}, provider {provider} ({n} calls, "
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


def run(suite, args: argparse.Namespace, device: str) -> dict:
    """Profile the first case ``args`` select on ``device``, per provider; write and return the summary."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = suite.cases(args, device)
    if not cases:
        raise SystemExit(f"slimops profile {suite.name}: the options select no case")
    case = cases[0]
    plist = args.providers or [p for p in suite.providers_for(device) if "compile" not in p]
    harness.progress(f"profiling {suite.name} {case.label} on {device}: {', '.join(plist)}")
    inputs = suite.inputs(case)
    budget = CompileBudget(args.compile_budget)
    results = [profile_provider(suite, case, p, inputs, out, iters=args.iters,
                                sample_s=0.2 if args.quick else args.sample_s, interval_s=args.interval_ms / 1e3,
                                row_limit=args.row_limit, budget=budget) for p in plist]
    summary = {"family": suite.name, "case": case.label, "params": {k: list(v) if isinstance(v, tuple) else v
                                                                      for k, v in case.params.items()},
               "mode": case.mode, "device": device, "env": harness.environment([device]), "providers": results}
    path = out / f"profile_{_stem(suite.name + '_' + case.label + '_' + device)}.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["path"] = str(path)
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--iters", type=int, default=5, help="profiled calls per provider (2 for slow ones; >= 1)")
    p.add_argument("--sample-s", type=float, default=2.0, help="seconds of sustained load sampled by NVML (GPU)")
    p.add_argument("--interval-ms", type=float, default=10.0, help="NVML sampling interval (> 0)")
    p.add_argument("--row-limit", type=int, default=15, help="rows of the key-averages table (>= 1)")


def check_arguments(args: argparse.Namespace) -> None:
    for name, low in (("iters", 1), ("row_limit", 1)):
        if getattr(args, name) < low:
            raise SystemExit(f"slimops profile: --{name.replace('_', '-')} must be >= {low}, "
                             f"got {getattr(args, name)}")
    if args.sample_s < 0 or args.interval_ms <= 0:
        raise SystemExit("slimops profile: --sample-s must be >= 0 and --interval-ms > 0")


def main(suite, args: argparse.Namespace, devices: list) -> int:
    ok = False
    for device in devices:
        s = run(suite, args, device)
        print(f"\nsummary: {s['path']}")
        for r in s["providers"]:
            if r["status"] == "ok":
                ok = True
                print(f"  {r['provider']:<18} {r['median_ms_profiled']:10.3f} ms/call (profiled)  trace {r['trace']}")
            else:
                print(f"  {r['provider']:<18} {r['status']}: {r['note']}")
    return 0 if ok else 1
