"""Faults: a raising or dying rank fails the others within the timeout; mismatched plans and shapes are clear errors."""

from __future__ import annotations

import time

import pytest
import torch

from slimops._ranks import RankError, spawn_ranks
from slimops.distributed.train import run_train

from .helpers import small_graph

SMALL = ["--dataset", "synthetic", "--nodes", "200", "--degree", "6", "--features", "12", "--classes", "4",
         "--epochs", "6", "--quiet", "--hidden", "8"]


def test_raising_rank_fails_the_others_quickly():
    t = time.monotonic()
    with pytest.raises(RankError) as ei:
        spawn_ranks(run_train, 3, (SMALL + ["--inject-fault", "1:2", "--timeout", "10"],), timeout_s=10,
                    run_timeout_s=60)
    assert time.monotonic() - t < 45
    errs = ei.value.errors
    assert "injected fault" in errs[1]
    for r in (0, 2):  # the others stop with a clear error naming the transport failure, not a hang
        assert "HaloExchangeError" in errs[r] or "failed" in errs[r], errs[r]


def test_dying_rank_fails_the_others_quickly():
    t = time.monotonic()
    with pytest.raises(RankError) as ei:
        spawn_ranks(run_train, 2, (SMALL + ["--inject-fault", "0:1:exit", "--timeout", "10"],), timeout_s=10,
                    run_timeout_s=60)
    assert time.monotonic() - t < 45
    assert "exited with code 3" in ei.value.errors[0]
    assert "HaloExchangeError" in ei.value.errors[1] or "failed" in ei.value.errors[1]


def _mismatched_plan_worker(rank, world):
    from slimops.distributed.comm import Comm, verify_plan
    from slimops.distributed.partition import build_plan, partition

    g = small_graph()
    plan = build_plan(g.edge_index, g.num_nodes, partition(g.edge_index, g.num_nodes, world, "random"), rank, world)
    sends = plan.send_counts()
    if rank == 1:
        sends[0] += 1  # rank 1 believes it sends one row more than rank 0 expects
    verify_plan(Comm(rank, world, 10.0), sends, plan.recv_counts())


def test_mismatched_plan_is_a_clear_error_on_every_rank():
    with pytest.raises(RankError) as ei:
        spawn_ranks(_mismatched_plan_worker, 2, (), timeout_s=10, run_timeout_s=60)
    for r in (0, 1):
        assert "mismatched halo plan: rank 1 sends" in ei.value.errors[r]


def _bad_shape_worker(rank, world):
    from slimops.distributed.comm import Comm
    from slimops.distributed.exchange import HaloContext, aggregate
    from slimops.distributed.partition import build_plan, partition

    g = small_graph()
    plan = build_plan(g.edge_index, g.num_nodes, partition(g.edge_index, g.num_nodes, world, "random"), rank, world)
    hctx = HaloContext(plan, Comm(rank, world, 5.0), "mxint4", "sar")
    rows = plan.num_local + (1 if rank == 0 else 0)  # rank 0 passes one row too many
    return aggregate(torch.randn(rows, 8), hctx)


def test_mismatched_shape_is_a_clear_error_and_the_peer_times_out():
    t = time.monotonic()
    with pytest.raises(RankError) as ei:
        spawn_ranks(_bad_shape_worker, 2, (), timeout_s=5, run_timeout_s=60)
    assert time.monotonic() - t < 40
    assert "ValueError" in ei.value.errors[0] and "aggregate expects" in ei.value.errors[0]
    assert "HaloExchangeError" in ei.value.errors[1]


def _wrong_width_worker(rank, world):
    from slimops.distributed.comm import Comm
    from slimops.distributed.exchange import HaloContext, exchange_all
    from slimops.distributed.partition import build_plan, partition

    g = small_graph()
    plan = build_plan(g.edge_index, g.num_nodes, partition(g.edge_index, g.num_nodes, world, "random"), rank, world)
    hctx = HaloContext(plan, Comm(rank, world, 5.0), "none", "all")
    return exchange_all(torch.randn(plan.num_local, 8 if rank == 0 else 9), hctx)


def test_mismatched_feature_width_fails_within_the_timeout():
    """Ranks that disagree on the row width: each sees the other's header and stops with a clear error."""
    t = time.monotonic()
    with pytest.raises(RankError) as ei:
        spawn_ranks(_wrong_width_worker, 2, (), timeout_s=5, run_timeout_s=60)
    assert time.monotonic() - t < 40
    errs = ei.value.errors
    assert len(errs) == 2
    assert all("HaloExchangeError" in e and "mismatched plan or shape" in e for e in errs.values()), errs


_SLEEPING_CALLER = '''
import os, sys, time
from slimops._ranks import spawn_ranks

def sleeper(rank, world, where):
    path = os.path.join(where, f"rank{rank}.pid")
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(600)

if __name__ == "__main__":
    spawn_ranks(sleeper, 2, (sys.argv[1],), timeout_s=5, run_timeout_s=600)
'''


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_ranks_end_when_the_caller_is_killed(tmp_path):
    """A caller killed by SIGKILL runs no cleanup; its ranks (children of the fork server) must still end."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "caller.py"
    script.write_text(_SLEEPING_CALLER)
    caller = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    pids = []
    try:
        deadline = time.monotonic() + 90
        while len(pids) < 2 and time.monotonic() < deadline and caller.poll() is None:
            time.sleep(0.2)
            pids = [int((tmp_path / f"rank{r}.pid").read_text()) for r in range(2)
                    if (tmp_path / f"rank{r}.pid").exists()]
        assert len(pids) == 2, f"the ranks did not start (caller status {caller.poll()})"
        caller.send_signal(signal.SIGKILL)
        caller.wait(10)
        deadline = time.monotonic() + 20
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in pids if _running(p)]
        assert not left, f"ranks {left} outlived their killed caller"
    finally:
        if caller.poll() is None:
            caller.kill()
        for p in pids:
            if _running(p):
                os.kill(p, signal.SIGKILL)
