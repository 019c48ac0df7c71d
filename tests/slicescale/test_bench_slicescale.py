"""The slicescale benchmarks: the runner suite end to end (small, CPU) and the SQNR table."""

from __future__ import annotations

import json

import pytest

from slimops.slicescale import bench
from slimops.testing import run_cli


def test_sqnr_rows_small():
    rows = bench.sqnr_rows((64, 64))
    assert len(rows) == len(bench.PAIRS) * len(bench.DISTRIBUTIONS)
    for r in rows:
        assert r["sqnr_direct_db"] > 0 and r["sqnr_convert_db"] > 0
        assert r["double_rounding_cost_db"] > -0.5  # rounding twice never helps much
    # E5M2 -> E3M2 keeps every mantissa bit: a cost only in the target's subnormals
    assert all(abs(r["double_rounding_cost_db"]) < 0.05 for r in rows if r["pair"] == "mxfp8_e5m2->mxfp6_e3m2")
    assert "cost" in bench.format_sqnr(rows)


def test_suite_quick(tmp_path):
    out = tmp_path / "results"
    r = run_cli(["bench", "slicescale", "--quick", "--device", "cpu", "--out", str(out),
                 "--pairs", "mxint8:mxint4", "mxfp8_e4m3:mxfp6_e2m3", "--fmts", "mxfp4", "--dtypes", "bfloat16",
                 "--providers", "reference-eager", "slimops-native", "slimops-native-out", "slimops-native-report",
                 "requantize", "torchao", "alloc-copy"], tmp_path, timeout=300)
    assert "GB/s" in r.stdout and "of alloc" in r.stdout and "report +" in r.stdout
    rows = json.loads((out / "bench_slicescale.json").read_text())["rows"]
    got = {(r["op"], r["src"], r["provider"]): r for r in rows}
    assert {(op, src) for op, src, _ in got} == {("convert", "mxint8"), ("convert", "mxfp8_e4m3"),
                                                ("quantize", "bfloat16")}
    for op, src in (("convert", "mxint8"), ("quantize", "bfloat16")):
        for p in ("slimops-native", "slimops-native-out"):
            assert got[(op, src, p)]["status"] == "ok" and got[(op, src, p)]["matches_reference"] is True
        assert got[(op, src, "alloc-copy")]["frac_of_alloc_copy"] == 1.0
        assert got[(op, src, "slimops-native")]["frac_of_alloc_copy"] > 0
    rep = got[("convert", "mxint8", "slimops-native-report")]
    assert rep["matches_reference"] is True and rep["report_overhead"] is not None
    assert got[("convert", "mxint8", "requantize")]["matches_reference"] is True  # FLOOR anchor of Gaussian data
    assert got[("convert", "mxint8", "torchao")]["status"] == "skipped"
    tao, out_row = got[("convert", "mxfp8_e4m3", "torchao")], got[("convert", "mxfp8_e4m3", "slimops-native-out")]
    assert tao["status"] == "ok"
    # torchao converts the oracle's 16 of 256 rows: its speedup column compares times for all 256 rows
    assert tao["work"] * 16 == out_row["work"]
    assert out_row["speedup_vs_torchao"] == pytest.approx(tao["time_ms"] * 16 / out_row["time_ms"], rel=1e-9)
    assert out_row["speedup_vs_requantize"] == pytest.approx(
        got[("convert", "mxfp8_e4m3", "requantize")]["time_ms"] / out_row["time_ms"], rel=1e-9)
    assert got[("quantize", "bfloat16", "slimops-native-report")]["status"] == "skipped"
    run_cli(["bench", "slicescale", "--pairs", "mxint8:mxfp4", "--device", "cpu", "--out", str(out)], tmp_path,
            expect=2)


def test_cases_by_context():
    """Alone: every pair and every quantize case at 8192x8192; inside a multi-suite slimops bench: the quick
    default; --quick: small."""
    import argparse

    def cases(**kw):
        ns = argparse.Namespace(quick=False, pairs=None, ss_ops=None, fmts=None, dtypes=None, shape=None)
        vars(ns).update(kw)
        return bench.SUITE.cases(ns, "cpu")

    alone = cases(families=["slicescale"])
    assert len([c for c in alone if c.op == "convert"]) == 14 == len(bench.PAIRS)
    assert len([c for c in alone if c.op == "quantize"]) == 18
    assert {c.shape for c in alone} == {(8192, 8192)}
    in_all = cases(families=[])
    assert [(c.op, c.src, c.dst) for c in in_all] == [("convert", s, d) for s, d in bench.IN_ALL_PAIRS] + \
        [("quantize", dt, f) for dt, f in bench.IN_ALL_QUANTIZE]
    assert {c.shape for c in in_all} == {(4096, 4096)}
    assert {c.shape for c in cases(families=[], quick=True)} == {(256, 1024)}
