"""The command line and the benchmark runner shared by every family (the suites have their own tests)."""

from __future__ import annotations

import sys

from slimops.__main__ import main
from slimops.testing import run_cli


def _fails(args, tmp_path):
    r = run_cli(args, tmp_path, timeout=60, expect=2)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    return r.stderr.strip()


def _fails_in_process(args, capsys):
    """``main(args)`` in this process (the same parser and checks as ``python -m slimops``, without 3 s of
    interpreter start per case): status 2 and the stderr line."""
    try:
        status = main(args)
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err.strip()
    assert status == 2, (status, err)
    return err


def test_bad_arguments_fail_before_any_work(tmp_path, capsys):
    """Each bad argument ends the command at once with one line naming it, never a traceback mid-run (the
    first through the real command line, the rest through its ``main``)."""
    (tmp_path / "afile").write_text("x")
    assert "is not a folder" in _fails(["bench", "mx", "--quick", "--out", str(tmp_path / "afile" / "sub")], tmp_path)
    cases = [(["bench", "nope", "--quick"], "unknown families ['nope']"),
             (["bench", "mx", "--quick", "--fmts", "mxfp9"], "mxfp9"),
             (["bench", "mx", "--quick", "--ops", "quantise"], "--ops"),
             (["bench", "mx", "--quick", "--shape", "12"], "--shape"),
             (["bench", "--quick", "--providers", "numpy"], "--providers"),
             (["profile", "mx_quantize", "--quick", "--iters", "0"], "--iters must be >= 1"),
             (["profile", "gemm", "--quick"], "unknown family or op"),
             (["profile", "mx_transpose", "--quick"], "unknown MX op")]
    for args, says in cases:
        err = _fails_in_process(args + ["--out", str(tmp_path / "out")], capsys)
        assert says in err and "Traceback" not in err, (args, err)


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


def test_interleaved_rounds_min_and_median():
    """Providers are timed round by round, interleaved; a slow one only in the first rounds."""
    import time

    from slimops.benchmarks import harness, runner

    assert harness.quantile([4.0, 1.0, 3.0, 2.0, 5.0], 0.5) == 3.0
    assert harness.quantile([1.0, 2.0], 0.2) == 1.2
    order = []
    fast = runner._Timed("fast", lambda: order.append("fast"), est_s=0.0001)
    slow = runner._Timed("slow", lambda: (order.append("slow"), time.sleep(0.03)), est_s=0.03)
    policy = dict(rounds=4, round_s=0.0005, max_calls_per_round=3, slow_s=0.02, slow_rounds=2)
    runner.time_interleaved([fast, slow], "cpu", policy)
    assert fast.rounds == 4 and slow.rounds == 2
    assert len(fast.times) == 4 * 3 and len(slow.times) == 2 and min(slow.times) >= 30
    # interleaved: the slow provider's calls sit between fast rounds, not after them all
    assert order[:8] == ["fast"] * 3 + ["slow"] + ["fast"] * 3 + ["slow"]


def test_modes_time_backward(tmp_path):
    """backward mode times autograd of the provider's outputs; full mode forward plus backward."""
    import torch

    from slimops.benchmarks import runner

    w = torch.randn(8, 8, requires_grad=True)
    fn = lambda: w @ w  # noqa: E731
    assert runner.with_mode(fn, "forward") is fn
    bwd = runner.with_mode(fn, "backward")
    w.grad = None
    bwd()
    assert w.grad is not None and w.grad.shape == w.shape
    full = runner.with_mode(fn, "full")
    full()
    with __import__("pytest").raises(runner.Skip, match="needs no gradient"):
        runner.with_mode(lambda: torch.ones(3), "backward")
