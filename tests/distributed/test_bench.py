"""The runner's multi-process mode (slowest rank, environment, failing ranks) and the distributed suite."""

from __future__ import annotations

import argparse
import json
import os
import time

import pytest

from slimops.benchmarks import runner
from slimops._ranks import RankError
from slimops.benchmarks.runner import Case, Suite


class _FakeSuite(Suite):
    """Each rank sleeps ``sleeps[rank]`` s a call; ``fail`` = (rank, "raise" | "exit") breaks one rank's calls."""

    name = "fake"
    providers = ("a", "b")
    case_columns = ("world",)
    multiprocess = True
    dist_timeout_s = 15.0
    run_timeout_s = 90.0
    extra_columns = ("calls",)

    def __init__(self, sleeps, fail=None):
        self.sleeps, self.fail = sleeps, fail
        self.calls = 0

    def cases(self, args, device):
        return [Case(device, dict(world=len(self.sleeps)))]

    def inputs(self, case):
        return {}

    def build(self, case, provider, inputs, budget):
        import torch.distributed as dist

        rank = dist.get_rank()

        def fn():
            if self.fail and self.fail[0] == rank:
                if self.fail[1] == "exit":
                    os._exit(3)
                raise ValueError(f"boom on purpose in rank {rank}")
            self.calls += rank + 1  # rank r counts r + 1 a call: the reduction sums and keeps the ranks apart
            time.sleep(self.sleeps[rank])

        return fn, ""

    def work(self, case):
        return 1000

    def counters(self, inputs):
        return {"calls": self.calls}

    def timing(self, device, quick):
        return dict(rounds=3, round_s=0.0, max_calls_per_round=1, slow_s=10.0, slow_rounds=3)


def _args(**kw):
    return argparse.Namespace(quick=True, compile_budget=0.0, providers=None, **kw)


def test_multiprocess_time_is_the_slowest_ranks():
    meta, rows = runner.run_suite(_FakeSuite([0.005, 0.08]), _args(), ["cpu"])
    assert meta["env"]["world_size"] == [2]
    assert meta["env"]["dist_backend"] == {"cpu": "gloo"}
    assert [r["provider"] for r in rows] == ["a", "b"]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["repeats"] == 3 and r["rounds"] == 3
        assert r["time_ms"] >= 80.0, r  # rank 1's sleep, not rank 0's
        assert r["calls"] == 3 and r["calls_per_rank"] == [1, 2]
        assert r["gb_s"] == pytest.approx(1000 / (r["time_ms"] * 1e-3) / 1e9)


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failing_rank_fails_the_run_clearly(how):
    t = time.monotonic()
    with pytest.raises(RankError) as ei:
        runner.run_suite(_FakeSuite([0.0, 0.0, 0.0], fail=(1, how)), _args(), ["cpu"])
    assert time.monotonic() - t < 60
    msg = str(ei.value)
    assert ei.value.first == 1
    assert "rank 1 failed first" in msg and "world 3 (gloo)" in msg
    assert ("boom on purpose in rank 1" if how == "raise" else "exited with code 3") in msg
    assert set(ei.value.errors) == {0, 1, 2}  # the others stopped (or were stopped), none left running


def _planned_bytes(nodes, degree, features, world, codec_name):
    """Per rank: bytes of one forward exchange and of one backward, from build_plan and the codec's nbytes."""
    from slimops.data import synthetic_graph
    from slimops.distributed.codecs import get_codec
    from slimops.distributed.partition import build_plan, partition

    g = synthetic_graph(nodes, degree=degree, features=features, seed=0)
    part = partition(g.edge_index, g.num_nodes, world, "random", seed=0)
    codec = get_codec(codec_name)
    fwd, bwd = [], []
    for r in range(world):
        plan = build_plan(g.edge_index, g.num_nodes, part, r, world)
        fwd.append(sum(codec.nbytes(len(plan.send_idx[p]), features) for p in plan.peers()))
        bwd.append(sum(codec.nbytes(len(plan.recv_ids[p]), features) for p in plan.peers()))
    return fwd, bwd


def test_distributed_suite_quick_run_bytes_match_the_codecs(tmp_path):
    from slimops.__main__ import main
    from slimops.distributed.bench import CODECS

    rc = main(["bench", "distributed", "--quick", "--worlds", "2", "--partitioner", "random", "--dist-timeout", "30",
               "--out", str(tmp_path)])
    assert rc == 0
    rep = json.loads((tmp_path / "bench_distributed.json").read_text())
    assert rep["meta"]["env"]["world_size"] == [2]
    rows = rep["rows"]
    assert {(r["exchange"], r["mode"]) for r in rows} == {("all", "forward"), ("all", "full"), ("sar", "forward"),
                                                         ("sar", "full")}
    assert (tmp_path / "bench_distributed.csv").exists()
    for codec in CODECS:
        fwd, bwd = _planned_bytes(2000, 8, 32, 2, codec)
        mine = [r for r in rows if r["provider"] == codec]
        assert len(mine) == 4, codec
        for r in mine:
            assert r["status"] == "ok", r
            want = fwd if r["mode"] == "forward" else [f + b for f, b in zip(fwd, bwd)]
            assert r["bytes_sent_per_rank"] == want, (codec, r["exchange"], r["mode"])
            assert r["bytes_sent"] == sum(want)
            assert r["time_ms"] > 0 and r["wire_gb_s"] > 0
            none = next(x for x in rows if x["provider"] == "none" and x["exchange"] == r["exchange"]
                        and x["mode"] == r["mode"])
            assert r["bytes_vs_none"] == pytest.approx(none["bytes_sent"] / r["bytes_sent"])
            assert r["work"] == none["bytes_sent"]  # the fp32 volume: the same for every codec


@pytest.mark.parametrize("argv, msg", [
    (["--worlds", "0"], "--worlds"),
    (["--exchange", "ring"], "--exchange: unknown ['ring']"),
    (["--partitioner", "kahip"], "--partitioner"),
    (["--graph-nodes", "10"], "--graph-nodes"),
    (["--dist-timeout", "0"], "--dist-timeout"),
])
def test_distributed_suite_arguments_checked_up_front(argv, msg, capsys, tmp_path):
    from slimops.__main__ import main

    assert main(["bench", "distributed", "--out", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err
    assert "bench distributed" in err and msg in err
    assert not list(tmp_path.iterdir())  # nothing ran


class _ThreadPoolSuite(_FakeSuite):
    """Each rank's inputs run a torch op large enough to use torch's intra-op thread pool, as the distributed
    suite's synthetic graph does (a forked rank hung there when the parent had used the pool)."""

    run_timeout_s = 45.0

    def inputs(self, case):
        import torch

        torch.randn(1 << 22).sum()
        return {}


def test_ranks_start_after_the_parent_used_torchs_thread_pool():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.randn(1 << 24).exp_().sum()  # the parent's OpenMP pool is up (and busy once)
        t = time.monotonic()
        # world 1: the rank gets both cores (threads_per_rank), so its op runs a parallel region
        meta, rows = runner.run_suite(_ThreadPoolSuite([0.0]), _args(), ["cpu"])
    finally:
        torch.set_num_threads(threads)
    assert all(r["status"] == "ok" for r in rows), rows
    assert time.monotonic() - t < 40  # run_timeout_s is 45: a hang fails the test, it does not stall the suite


def test_two_suites_in_one_bench_call(tmp_path):
    """The README's main command runs every suite in one process: the distributed suite after another one,
    whose roofline copy and kernels used torch's thread pool (the main command once hung exactly there)."""
    from slimops.testing import run_cli

    r = run_cli(["bench", "slicescale", "distributed", "--quick", "--pairs", "mxint8:mxint4", "--worlds", "1",
                 "--exchange", "sar", "--providers", "slimops-native", "none", "--dist-timeout", "30",
                 "--compile-budget", "0", "--out", str(tmp_path)], cwd=tmp_path, timeout=420)
    assert "world 1" in r.stderr  # world 1: one rank with both cores, which runs torch's parallel regions
    for family in ("slicescale", "distributed"):
        rep = json.loads((tmp_path / f"bench_{family}.json").read_text())
        assert rep["rows"] and all(row["status"] == "ok" for row in rep["rows"]), rep["rows"]
