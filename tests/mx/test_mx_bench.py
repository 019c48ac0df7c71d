"""The MX benchmark suite through ``slimops bench mx`` and ``slimops profile``, end to end on small sizes (CPU)."""

from __future__ import annotations

import csv
import json

from slimops.benchmarks import runner
from slimops.mx import bench as bmx
from slimops.testing import run_cli


def _run(args, tmp_path):
    return run_cli(args, tmp_path)


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
