"""The mxgemm suite end to end (quick, CPU): every provider, its weight bytes, matches, the grid options."""

from __future__ import annotations

import argparse
import json

from slimops.benchmarks.runner import Case
from slimops.mxgemm import bench
from slimops.testing import run_cli


def test_suite_quick(tmp_path):
    out = tmp_path / "results"
    r = run_cli(["bench", "mxgemm", "--quick", "--device", "cpu", "--out", str(out)], tmp_path, timeout=300)
    assert "TFLOP/s" in r.stdout
    rows = json.loads((out / "bench_mxgemm.json").read_text())["rows"]
    got = {(r["M"], r["provider"]): r for r in rows}
    for m in (1, 24):
        for p in ("slimops-native", "dequant-linear", "nn-linear", "int8pack", "int4pack"):
            assert got[(m, p)]["status"] == "ok", got[(m, p)]["note"]
            assert got[(m, p)]["tflop_s_mnk"] > 0 and got[(m, p)]["frac_of_copy_bw"] > 0
        assert got[(m, "slimops-native")]["matches_reference"] is True
        assert got[(m, "slimops-native")]["work"] == 512 * 128 + 512 * 8  # packed int4 bytes + scales
        assert got[(m, "nn-linear")]["work"] == 512 * 256 * 2
    assert got[(1, "slimops-native")]["note"].endswith("kernel gemv_bf16") or "generic" in got[(1, "slimops-native")]["note"]
    run_cli(["bench", "mxgemm", "--fmts", "mxint5", "--device", "cpu", "--out", str(out)], tmp_path, expect=2)


def test_grids():
    ns = argparse.Namespace(full=False, quick=False, fmts=None, dtypes=None, ms=None, shapes=None)
    default = bench.SUITE.cases(ns, "cpu")
    assert {(c.M, c.K, c.N) for c in default} == {(1, 4096, 4096), (16, 4096, 4096), (512, 4096, 4096)}
    ns.full = True
    full = bench.SUITE.cases(ns, "cpu")
    assert len(full) == 6 * 3 * 2 * 9 and {(c.K, c.N) for c in full} == set(bench.SHAPES)
    ns.ms, ns.shapes, ns.fmts, ns.dtypes = ["1,2048"], ["4096x14336"], ["mxfp4"], ["float32"]
    picked = bench.SUITE.cases(ns, "cpu")
    assert [(c.fmt, c.dtype, c.M, c.K, c.N) for c in picked] == [("mxfp4_e2m1", "float32", 1, 4096, 14336),
                                                                ("mxfp4_e2m1", "float32", 2048, 4096, 14336)]
    case = Case("cpu", {"fmt": "mxfp6_e3m2", "dtype": "bfloat16", "M": 1, "K": 4096, "N": 4096})
    assert bench.weight_bytes(case, "slimops-native") == 4096 * 3072 + 4096 * 128
    assert bench._copies(bench.weight_bytes(case, "slimops-native")) * 4096 * (3072 + 128) >= 64 << 20
