"""The slicescale benchmarks: the runner suite end to end (small, CPU) and the SQNR table."""

from __future__ import annotations

import json

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
                 "--pairs", "mxint8:mxint4", "mxfp8_e4m3:mxfp6_e2m3", "--providers", "reference-eager",
                 "slimops-native", "requantize", "torchao"], tmp_path, timeout=300)
    assert "GB/s" in r.stdout
    rows = json.loads((out / "bench_slicescale.json").read_text())["rows"]
    got = {(r["src"], r["provider"]): r for r in rows}
    assert got[("mxint8", "slimops-native")]["status"] == "ok"
    assert got[("mxint8", "slimops-native")]["matches_reference"] is True
    assert got[("mxint8", "requantize")]["matches_reference"] is True  # FLOOR anchor of Gaussian data
    assert got[("mxint8", "torchao")]["status"] == "skipped"
    assert got[("mxfp8_e4m3", "torchao")]["status"] == "ok"
    run_cli(["bench", "slicescale", "--pairs", "mxint8:mxfp4", "--device", "cpu", "--out", str(out)], tmp_path,
            expect=2)
