"""The command-line contract: torchrun launch, W = 1 without torchrun, OUT.json fields, a dying worker ends the launch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from slimops._ranks import spawn_ranks
from slimops.distributed.train import run_train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["--dataset", "synthetic", "--nodes", "200", "--degree", "6", "--features", "12", "--classes", "4",
         "--hidden", "8"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _torchrun(world, args, timeout=240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world), "--master-addr",
           "127.0.0.1", "--master-port", str(_free_port()), "-m", "slimops.distributed.train"] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)


def test_torchrun_contract(tmp_path):
    out = tmp_path / "out.json"
    p = _torchrun(2, SMALL + ["--model", "gcn", "--codec", "int2", "--schedule", "linear", "--mode", "sar",
                              "--partitioner", "metis", "--epochs", "4", "--seed", "1", "--timeout", "30",
                              "--report", str(out)])
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("epoch ") == 4 and "codec int2" in p.stdout and "codec none" in p.stdout
    r = json.loads(out.read_text())
    for key in ("args", "test_acc", "val_acc", "bytes_sent", "bytes_sent_per_epoch", "bytes_allreduce", "world_size",
                "epochs", "peak_mem_bytes"):
        assert key in r, key
    assert r["world_size"] == 2 and r["epochs"] == 4 and r["args"]["codec"] == "int2"
    assert 0 <= r["test_acc"] <= 1 and 0 <= r["val_acc"] <= 1
    assert isinstance(r["bytes_sent"], int) and r["bytes_sent"] == sum(r["bytes_sent_per_epoch"])
    assert len(r["bytes_sent_per_epoch"]) == 4 and len(r["peak_mem_bytes"]) == 2
    assert r["bytes_sent_per_epoch"][0] < r["bytes_sent_per_epoch"][-1]  # int2 first, none last
    assert r["bytes_allreduce"] > 0


def test_torchrun_dying_worker_fails_the_launch():
    p = _torchrun(2, SMALL + ["--epochs", "20", "--timeout", "10", "--inject-fault", "1:2:exit", "--quiet"],
                  timeout=120)
    assert p.returncode != 0


def test_single_process_without_torchrun(tmp_path):
    out = tmp_path / "w1.json"
    p = subprocess.run([sys.executable, "-m", "slimops.distributed.train"] + SMALL +
                       ["--epochs", "3", "--codec", "mxint4", "--report", str(out)],
                       capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["world_size"] == 1 and r["bytes_sent"] == 0 and r["bytes_allreduce"] == 0


def test_help_writes_the_schedule_formulas():
    p = subprocess.run([sys.executable, "-m", "slimops.distributed.train", "--help"], capture_output=True, text=True,
                       timeout=60, env=_env(), cwd=ROOT)
    assert p.returncode == 0
    assert "r(t) = R0 ** (1 - s)" in p.stdout and "mxint2 -> mxint4 -> mxint8 -> none" in p.stdout


@pytest.mark.parametrize("codec,schedule", [("none", "fixed"), ("mxfp8", "exp"), ("learned", "exp")])
def test_w3_runs_report_consistent_bytes(codec, schedule):
    args = SMALL + ["--codec", codec, "--schedule", schedule, "--epochs", "3", "--quiet", "--mode", "sar"]
    r = spawn_ranks(run_train, 3, (args,), timeout_s=20, run_timeout_s=120)[0]
    assert r["bytes_sent"] == sum(r["bytes_sent_per_epoch"]) == sum(r["bytes_sent_per_rank"])
    assert r["bytes_sent"] > 0


def _gat_epoch_bytes(world, codec, args):
    """Halo payload bytes of one training epoch of the 2-layer GAT, all at once: every peer's rows, both layers
    (heads * hidden wide, then classes wide), forward and backward, as the codec's nbytes says."""
    from slimops.data import synthetic_graph
    from slimops.distributed.codecs import get_codec
    from slimops.distributed.partition import build_plan, partition

    g = synthetic_graph(200, 6, 12, 4, seed=0)
    part = partition(g.edge_index, g.num_nodes, world, "metis", 0)
    wire = get_codec(codec)
    total = 0
    for rank in range(world):
        plan = build_plan(g.edge_index, g.num_nodes, part, rank, world, "gat")
        for width in (args["heads"] * args["hidden"], 4):
            total += sum(wire.nbytes(len(plan.send_idx[p]), width) for p in plan.peers())  # forward
            total += sum(wire.nbytes(len(plan.recv_ids[p]), width) for p in plan.peers())  # backward
    return total


@pytest.mark.parametrize("model,codec", [("gat", "none"), ("gat", "mxint4"), ("gatv2", "mxint4")])
def test_gat_trains_and_sends_what_the_plan_says(model, codec):
    """--model gat / gatv2: the all-at-once mode sends exactly the plan's rows through the codec each epoch (GATv2's
    halo, x_l, is as wide as GAT's z); SAR sends the forward halos twice (it fetches them again in backward) and
    the same gradients."""
    args = SMALL + ["--model", model, "--heads", "2", "--codec", codec, "--epochs", "2", "--quiet",
                    "--partitioner", "metis"]
    every = spawn_ranks(run_train, 2, (args + ["--mode", "all"],), timeout_s=20, run_timeout_s=120)[0]
    sar = spawn_ranks(run_train, 2, (args + ["--mode", "sar"],), timeout_s=20, run_timeout_s=120)[0]
    want = _gat_epoch_bytes(2, codec, {"heads": 2, "hidden": 8})
    assert every["bytes_sent_per_epoch"] == [want, want]
    assert all(want < b < 2 * want for b in sar["bytes_sent_per_epoch"])
    assert 0 <= every["test_acc"] <= 1 and every["args"]["model"] == model


@pytest.mark.parametrize("argv,message", [
    (["--device", "cuda"], "no CUDA device"),
    (["--dist-backend", "nccl"], "needs --device cuda"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--attn-dropout", "1.0"], "must be in [0, 1)"),
])
def test_arguments_that_cannot_run_are_refused_up_front(argv, message):
    if argv[:2] == ["--device", "cuda"] and __import__("torch").cuda.is_available():
        pytest.skip("a CUDA device is present: --device cuda is valid here")
    p = subprocess.run([sys.executable, "-m", "slimops.distributed.train"] + SMALL + argv, capture_output=True,
                       text=True, timeout=60, env=_env(), cwd=ROOT)
    assert p.returncode == 2 and message in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
