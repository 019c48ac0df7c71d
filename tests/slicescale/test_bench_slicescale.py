"""The slicescale benchmark suite runs and reports what it says (small sizes)."""

from __future__ import annotations

from slimops.slicescale import bench


def test_sqnr_rows_small():
    rows = bench.sqnr_rows((64, 64))
    assert len(rows) == len(bench.PAIRS) * len(bench.DISTRIBUTIONS)
    for r in rows:
        assert r["sqnr_direct_db"] > 0 and r["sqnr_convert_db"] > 0
        # rounding twice never helps much; E5M2 -> E3M2 keeps every mantissa bit (cost only in subnormals)
        assert r["double_rounding_cost_db"] > -0.5
    assert all(abs(r["double_rounding_cost_db"]) < 0.05 for r in rows if r["pair"] == "mxfp8_e5m2->mxfp6_e3m2")


def test_bandwidth_rows_small():
    rows = bench.bandwidth_rows("cpu", shape=(64, 256), budget_s=0.01, quick=True, copy_nbytes=1 << 20)
    providers = {(r["pair"], r["provider"]) for r in rows}
    assert ("mxint8->mxint4", "slimops") in providers and ("mxint8->mxint4", "requantize") in providers
    assert all(r["gbps"] > 0 and 0 < r["frac_of_copy"] for r in rows)
    assert "of copy" in bench.format_rows(rows)
