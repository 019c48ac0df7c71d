"""Two nodes through torchrun's c10d rendezvous: two agents of 2 workers each train what one 4-worker launch trains.

Both agents run on this machine over loopback (``--rdzv-endpoint 127.0.0.1:PORT``); c10d decides which agent's
workers get ranks 0-1 and which 2-3, and the test does not assume it. Every process the test starts carries a
marker in its environment, and the test ends whichever of them are still alive at the end, by pid (torchrun
starts its workers in sessions of their own, so ending the agents alone would not reach them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

from slimops._ranks import spawn_ranks
from slimops.distributed.train import run_train

from .test_cli import SMALL, _env, _free_port, ROOT

ARGS = SMALL + ["--model", "gcn", "--codec", "mxint4", "--schedule", "exp", "--mode", "sar", "--partitioner",
                "metis", "--epochs", "3", "--seed", "3", "--timeout", "30", "--quiet"]


def _marked(marker: str) -> list:
    """Pids of this user's processes whose environment holds ``SLIMOPS_TEST_MARK=marker``."""
    pids, needle = [], f"SLIMOPS_TEST_MARK={marker}".encode()
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:  # gone, or not ours
                pass
    return pids


def _end(marker: str) -> list:
    left = _marked(marker)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def test_two_agents_through_c10d_rendezvous_match_one_four_worker_launch(tmp_path):
    out = tmp_path / "two-nodes.json"
    marker = uuid.uuid4().hex
    env = dict(_env(), SLIMOPS_TEST_MARK=marker)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", marker,
           "--max-restarts", "0", "-m", "slimops.distributed.train"] + ARGS + ["--report", str(out)]
    t0 = time.monotonic()
    agents = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
              for _ in range(2)]
    try:
        logs = [a.communicate(timeout=120) for a in agents]
    finally:
        for a in agents:
            if a.poll() is None:
                a.kill()
                a.wait(10)
        time.sleep(0.5)
        left = _end(marker)
    seconds = time.monotonic() - t0
    for a, (_, err) in zip(agents, logs):
        assert a.returncode == 0, err[-3000:]
    assert left == [], f"processes of the launch still alive at the end: {left}"
    two = json.loads(out.read_text())
    one = spawn_ranks(run_train, 4, (ARGS,), timeout_s=30, run_timeout_s=120)[0]
    assert two["world_size"] == one["world_size"] == 4
    assert two["history"] == one["history"]  # loss, accuracies, codec and bytes of every epoch, exactly
    for key in ("bytes_sent", "bytes_sent_per_rank", "nodes_per_rank", "halo_rows_per_rank", "test_acc"):
        assert two[key] == one[key], key
    print(f"two agents through c10d: {seconds:.1f} s")
