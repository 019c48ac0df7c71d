"""The ``slimops bench`` and ``slimops profile`` commands, end to end on small sizes (CPU)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from slimops.__main__ import main
from slimops.benchmarks import mx as bmx


def _run(args, tmp_path, timeout=150):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-m", "slimops", *args], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    return r


def test_bench_quick_writes_reports(tmp_path):
    out = tmp_path / "results"
    r = _run(["bench", "--quick", "--device", "cpu", "--out", str(out), "--ops", "quantize", "dequantize",
              "--fmts", "mxfp8", "--dtypes", "float32"], tmp_path)
    assert "reference-eager" in r.stdout and "GB/s" in r.stdout  # the table at the end
    assert "cpu [1/2]" in r.stderr  # progress

    data = json.loads((out / "bench_mx.json").read_text())
    env = data["meta"]["env"]
    assert env["devices"]["cpu"] and env["cpu"] and env["date"]
    for k in ("python", "torch", "triton", "slimops", "torchao"):
        assert k in env["versions"]
    assert env["versions"]["torch"] and env["versions"]["slimops"]
    assert data["meta"]["copy_bw_gb_s"]["cpu"] > 0
    rows = data["rows"]
    assert {(r["op"], r["provider"]) for r in rows} == {(op, p) for op in ("quantize", "dequantize")
                                                        for p in bmx.providers_for("cpu")}
    for r in rows:
        assert set(bmx.COLUMNS) <= set(r)
        assert r["status"] in ("ok", "skipped", "error")
        if r["status"] == "ok":
            assert r["time_ms"] > 0 and r["gb_s"] > 0 and r["frac_of_copy_bw"] > 0
            assert r["q20_ms"] <= r["time_ms"] <= r["q80_ms"]
            assert r["peak_mem_method"] in ("rss_hwm", "io_bytes")
            assert r["speedup_vs_ref_eager"] > 0
        else:
            assert r["note"]  # a skip or error says why
    ref = [r for r in rows if r["provider"] == "reference-eager"]
    assert all(r["status"] == "ok" for r in ref)
    native = [r for r in rows if r["provider"] == "slimops-native" and r["status"] == "ok"]
    assert all(r["matches_reference"] is True for r in native)

    with open(out / "bench_mx.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == bmx.COLUMNS
        assert len(list(reader)) == len(rows)
    assert (out / "bench_mx.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_quick_writes_traces(tmp_path):
    out = tmp_path / "prof"
    r = _run(["profile", "mx_quantize", "--quick", "--device", "cpu", "--out", str(out), "--fmt", "mxfp8"],
             tmp_path)
    assert "Self CPU" in r.stdout  # the key-averages table
    assert "skipping NVML" in r.stderr  # no GPU here; on a GPU machine this is sampled instead
    summary = json.loads((out / "profile_quantize_mxfp8_float32_cpu.json").read_text())
    assert summary["env"]["versions"]["torch"]
    by = {p["provider"]: p for p in summary["providers"]}
    assert by["reference-eager"]["status"] == "ok"
    for p in by.values():
        if p["status"] == "ok":
            trace = json.loads(open(p["trace"]).read())
            assert trace["traceEvents"]


def test_info_still_works(capsys):
    assert main(["info"]) == 0
    assert "torch" in capsys.readouterr().out


def test_nvml_sampler_with_a_fake_nvml(monkeypatch):
    """The GPU sampling thread and its summary, against a stand-in for pynvml (no GPU needed)."""
    import time
    import types

    from slimops.benchmarks import profile as bprof

    class NVMLError(Exception):
        pass

    fake = types.SimpleNamespace(
        NVMLError=NVMLError, NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1, NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda u: "h", nvmlDeviceGetHandleByIndex=lambda i: "h",
        nvmlDeviceGetClockInfo=lambda h, k: 1980 if k == 0 else 2619,
        nvmlDeviceGetPowerUsage=lambda h: 350_000,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=97, memory=80),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=3 * 2**30),
        nvmlDeviceGetTemperature=lambda h, k: 55)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with bprof.NvmlSampler(0, interval_s=0.002) as s:
        time.sleep(0.05)
    summary = s.summary()
    assert summary["samples"] >= 2
    assert summary["sm_clock_mhz"]["median"] == 1980 and summary["power_w"]["max"] == 350
    assert summary["mem_used_mib"]["max"] == 3072


def test_measure_timing_policy():
    """Median and quantiles; a slow first call (a JIT, say) rechecked; a slow function timed few times."""
    import time

    from slimops.benchmarks import harness

    assert harness.quantile([4.0, 1.0, 3.0, 2.0, 5.0], 0.5) == 3.0
    assert harness.quantile([1.0, 2.0], 0.2) == 1.2
    calls = []

    def jit_then_fast():
        calls.append(1)
        time.sleep(0.3 if len(calls) == 1 else 0.0)

    t = harness.measure(jit_then_fast, "cpu", warmup=3, budget_s=0.01, min_repeats=7, slow_s=0.2,
                        recheck_slow=True)
    assert t.warmup == 3 and t.repeats >= 7 and t.first_call_ms >= 300 and t.median_ms < 100
    assert t.q20_ms <= t.median_ms <= t.q80_ms

    def slow():
        time.sleep(0.06)

    t = harness.measure(slow, "cpu", slow_s=0.05, slow_repeats=3)
    assert (t.warmup, t.repeats) == (1, 3) and t.median_ms >= 60
