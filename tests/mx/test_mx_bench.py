"""The MX benchmark suite through ``slimops bench mx`` and ``slimops profile``, end to end on small sizes (CPU)."""

from __future__ import annotations

import csv
import json

import pytest

from slimops._backend import native_module
from slimops.benchmarks import runner
from slimops.mx import bench as bmx
from slimops.testing import run_cli


def _run(args, tmp_path):
    # every provider of the suite, two torch.compile attempts among them: minutes on a busy 2-core machine
    return run_cli(args, tmp_path, timeout=900)


def test_bench_quick_writes_reports(tmp_path):
    out = tmp_path / "results"
    r = _run(["bench", "mx", "--quick", "--device", "cpu", "--out", str(out), "--ops", "quantize", "dequantize",
              "--fmts", "mxfp8", "--dtypes", "float32"], tmp_path)
    assert "reference-eager" in r.stdout and "GB/s" in r.stdout  # the table at the end
    assert "mx cpu [1/2]" in r.stderr  # progress

    data = json.loads((out / "bench_mx.json").read_text())
    env = data["meta"]["env"]
    assert env["devices"]["cpu"] and env["cpu"] and env["date"]
    for k in ("python", "torch", "triton", "slimops", "torchao"):
        assert k in env["versions"]
    assert env["versions"]["torch"] and env["versions"]["slimops"]
    assert data["meta"]["copy_bw_gb_s"]["cpu"] > 0 and data["meta"]["timing"]["cpu"]["rounds"] >= 2
    rows = data["rows"]
    assert {(r["op"], r["provider"]) for r in rows} == {(op, p) for op in ("quantize", "dequantize")
                                                        for p in bmx.SUITE.providers_for("cpu")}
    for r in rows:
        assert set(runner.row_columns(bmx.SUITE)) <= set(r)
        assert r["status"] in ("ok", "skipped", "error")
        if r["status"] == "ok":
            assert r["time_ms"] > 0 and r["gb_s"] > 0 and r["frac_of_copy_bw"] > 0
            assert r["time_ms"] <= r["q20_ms"] <= r["median_ms"] <= r["q80_ms"]
            assert r["rounds"] >= 1 and r["repeats"] >= r["rounds"]
            assert r["peak_mem_method"] in ("rss_hwm", "io_bytes")
            assert r["speedup_vs_ref_eager"] > 0
        else:
            assert r["note"]  # a skip or error says why
    ref = [r for r in rows if r["provider"] == "reference-eager"]
    assert all(r["status"] == "ok" for r in ref)
    native = [r for r in rows if r["provider"] == "slimops-native" and r["status"] == "ok"]
    assert all(r["matches_reference"] is True for r in native)

    # the compiled torchao peer row: a time, or the reason it could not run (CPU: inductor has no e8m0)
    compiled = [r for r in rows if r["provider"] == "torchao-compiled"]
    assert len(compiled) == 2
    for r in compiled:
        assert (r["status"] == "ok" and r["time_ms"] > 0) or (r["status"] == "skipped" and r["note"])
        if r["status"] == "skipped":
            assert "torch.compile failed" in r["note"] or "torchao" in r["note"] or "compile budget" in r["note"]
    # the allocating roofline: its own bytes, and every measured row's fraction of it
    for op in ("quantize", "dequantize"):
        by = {r["provider"]: r for r in rows if r["op"] == op}
        assert by["alloc-copy"]["work"] == 2 * 256 * 1024 * 4
        assert by["alloc-copy"]["frac_of_alloc_copy"] == 1.0
        nat = by["slimops-native"]
        assert nat["frac_of_alloc_copy"] == nat["gb_s"] / by["alloc-copy"]["gb_s"]
        assert nat["matches_reference"] is True and by["alloc-copy"]["matches_reference"] is None

    with open(out / "bench_mx.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == runner.row_columns(bmx.SUITE)
        assert len(list(reader)) == len(rows)
    assert (out / "bench_mx.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_quick_writes_traces(tmp_path):
    out = tmp_path / "prof"
    r = _run(["profile", "mx_quantize", "--quick", "--device", "cpu", "--out", str(out), "--fmt", "mxfp8",
              "--dtype", "float32"], tmp_path)
    assert "Self CPU" in r.stdout  # the key-averages table
    assert "skipping NVML" in r.stderr  # no GPU here; on a GPU machine this is sampled instead
    summary = json.loads((out / "profile_mx_quantize_mxfp8_float32_256x1024_cpu.json").read_text())
    assert summary["family"] == "mx" and summary["params"]["op"] == "quantize"
    assert summary["env"]["versions"]["torch"]
    by = {p["provider"]: p for p in summary["providers"]}
    assert by["reference-eager"]["status"] == "ok"
    for p in by.values():
        if p["status"] == "ok":
            trace = json.loads(open(p["trace"]).read())
            assert trace["traceEvents"]


def test_bench_sweep_sizes_and_plot(tmp_path):
    out = tmp_path / "sweep"
    _run(["bench", "mx", "--quick", "--device", "cpu", "--out", str(out), "--sweep", "--sweep-range", "12:14", "--ops", "dequantize",
          "--fmts", "mxfp8", "--dtypes", "bfloat16"], tmp_path)
    data = json.loads((out / "bench_mx.json").read_text())
    rows = data["rows"]
    assert data["meta"]["options"]["sweep"] is True and data["meta"]["options"]["sweep_range"] == "12:14"
    assert {r["provider"] for r in rows} == set(bmx.SWEEP_PROVIDERS)
    sizes = sorted({r["shape"] for r in rows}, key=lambda s: int(s.split("x")[0]))
    assert sizes == ["4x1024", "8x1024", "16x1024"]
    for r in rows:
        if r["provider"] in ("slimops-native", "alloc-copy"):
            assert r["status"] == "ok" and r["time_ms"] > 0 and r["frac_of_copy_bw"] > 0
    assert (out / "bench_mx.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_arguments():
    assert bmx.parse_sweep("default", "cpu") == (16, 26) and bmx.parse_sweep("default", "cuda") == (16, 28)
    assert bmx.parse_sweep("16:20", "cpu") == (16, 20)
    for bad in ("20:16", "x", "5:9", "16"):
        with pytest.raises(SystemExit):
            bmx.parse_sweep(bad, "cpu")


@pytest.mark.skipif(native_module("_C") is None, reason="slimops._C not built")
def test_bench_baseline_build_timed_beside_native(tmp_path):
    """--baseline-build: another build's kernels through the same ops, in the same rounds, checked like the rest."""
    out = tmp_path / "ba"
    _run(["bench", "mx", "--quick", "--device", "cpu", "--out", str(out), "--ops", "quantize", "fake_quantize",
          "--fmts", "mxfp4", "--dtypes", "bfloat16", "--providers", "reference-eager", "slimops-native",
          "slimops-native-baseline", "--baseline-build", native_module("_C").__file__], tmp_path)
    data = json.loads((out / "bench_mx.json").read_text())
    assert data["meta"]["speedups"]["speedup_vs_baseline_build"] == "slimops-native-baseline"
    by = {(r["op"], r["provider"]): r for r in data["rows"]}
    for op in ("quantize", "fake_quantize"):
        base, nat = by[(op, "slimops-native-baseline")], by[(op, "slimops-native")]
        assert base["status"] == "ok" and base["matches_reference"] is True
        assert nat["speedup_vs_baseline_build"] == base["time_ms"] / nat["time_ms"]


def test_bench_baseline_build_refused_clearly(tmp_path):
    r = run_cli(["bench", "mx", "--quick", "--device", "cpu", "--out", str(tmp_path / "x"), "--baseline-build",
                 str(tmp_path / "missing.so")], tmp_path, expect=2)
    assert "--baseline-build: cannot load" in r.stderr and not (tmp_path / "x").exists()
