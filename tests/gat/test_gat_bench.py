"""slimops bench gat on a small graph: every provider runs, and the attention part comes from the direct rows."""

import argparse

import pytest

pytest.importorskip("torch_geometric", reason="PyG is the peer of the GAT suite")


def test_attention_part_is_timed_directly():
    from slimops.benchmarks import runner
    from slimops.gat import bench

    suite = bench.GATSuite()
    run = runner.Run(suite, argparse.Namespace(), runner.CompileBudget(0))
    policy = dict(rounds=1, round_s=0.0, max_calls_per_round=1, slow_s=60, slow_rounds=1)
    case = runner.Case("cpu", dict(layer="gat", graph="powerlaw", nodes=300, avg_degree=8, heads=2, channels=4),
                       "full")
    rows = {r["provider"]: r for r in runner.run_case(run, case, suite.providers_for("cpu"), policy)}
    ok = {p for p, r in rows.items() if r["status"] == "ok"}
    assert ok == {"slimops", "pyg", "reference", "projection", "slimops_attention", "pyg_attention"}, \
        {p: r["note"] for p, r in rows.items()}
    ours, pyg = rows["slimops"], rows["pyg"]
    assert ours["attention_ms"] == rows["slimops_attention"]["time_ms"]
    assert pyg["attention_ms"] == rows["pyg_attention"]["time_ms"]
    assert ours["attention_speedup_vs_pyg"] == pytest.approx(pyg["attention_ms"] / ours["attention_ms"])
    assert rows["pyg_attention"]["speedup_vs_pyg"] == pytest.approx(1.0)
    # the reference layer has no direct attention row: the layer minus the projection
    ref = rows["reference"]
    assert ref["attention_ms"] == pytest.approx(ref["time_ms"] - rows["projection"]["time_ms"])
