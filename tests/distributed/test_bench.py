"""The runner's multi-process mode (slowest rank, environment, failing ranks) and the distributed suite."""

from __future__ import annotations

import argparse
import json
import os
import time

import pytest

from slimops.benchmarks import runner
from slimops.benchmarks.runner import Case, RankError, Suite


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
