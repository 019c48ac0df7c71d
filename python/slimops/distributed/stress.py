"""Launch many short training runs and count the failed launches (issue: a finished run must exit 0).

    python -m slimops.distributed.stress --launches 200 --world 4 --jobs 1 -- \\
        --dataset cora --root ../shared/data/planetoid --model gcn --codec mxint2 --schedule exp --epochs 3

Each launch is ``torchrun --nproc-per-node W -m slimops.distributed.train ARGS``
(``--launcher torchrun``, what users run) or W plain ``python -m
slimops.distributed.train`` processes joined through the environment
(``--launcher direct``: RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free
MASTER_PORT; no agent process, so cheaper, for the tests). Loopback only; every
launch is bounded by ``--launch-timeout`` and its processes are killed past it.
A launch fails when any process exits non-zero or is killed by a signal; the
summary counts failures by their cause (the first line of stderr that names
one: SIGABRT's ``terminate called ...``, a traceback's last line, a timeout) and
is printed as JSON (``--out`` writes it too).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: "dict | None" = None) -> dict:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def _marked(marker: str) -> list:
    """Pids of live processes whose environment holds ``SLIMOPS_LAUNCH_ID=marker`` (a launch's descendants)."""
    needle = f"SLIMOPS_LAUNCH_ID={marker}".encode()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def _kill(pids: list) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def launch(world: int, train_args: list, launcher: str = "torchrun", timeout: float = 120.0) -> dict:
    """One launch: ``{"ok", "rc": [...], "cause", "seconds", "stdout", "stderr", "left_behind"}``.

    ``left_behind`` lists the launch's processes (found by a marker in their environment) still alive once the
    launch has ended; they are killed then. Past ``timeout`` every process of the launch is killed and the
    launch fails."""
    t0 = time.monotonic()
    py = sys.executable
    marker = uuid.uuid4().hex
    if launcher == "torchrun":
        cmds = [[py, "-m", "torch.distributed.run", "--nproc-per-node", str(world), "--master-addr", "127.0.0.1",
                 "--master-port", str(free_port()), "-m", "slimops.distributed.train", *train_args]]
        envs = [_env(dict(SLIMOPS_LAUNCH_ID=marker))]
    else:
        port = str(free_port())
        cmds = [[py, "-m", "slimops.distributed.train", *train_args] for _ in range(world)]
        envs = [_env(dict(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=port, SLIMOPS_LAUNCH_ID=marker))
                for r in range(world)]
    procs = [subprocess.Popen(c, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for c, e in zip(cmds, envs)]
    deadline = time.monotonic() + timeout
    outs, errs, timed_out = [], [], False
    for p in procs:
        try:
            o, e = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(_marked(marker))
            o, e = p.communicate()
        outs.append(o or "")
        errs.append(e or "")
    left = [] if timed_out else _marked(marker)
    _kill(left)
    rcs = [p.returncode for p in procs]
    stderr = "\n".join(errs) + (f"\nlaunch still running after {timeout:g} s, killed" if timed_out else "")
    ok = all(rc == 0 for rc in rcs) and not timed_out and not left
    return {"ok": ok, "rc": rcs, "cause": None if ok else cause(stderr, rcs),
            "seconds": round(time.monotonic() - t0, 2), "stdout": "\n".join(outs), "stderr": stderr,
            "left_behind": left}


def cause(stderr: str, rcs: list) -> str:
    """The first line of ``stderr`` that says why a launch failed (or the exit statuses)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for key in ("terminate called", "still running after", "Error:", "failed:", "Signal", "exitcode"):
        hit = next((ln for ln in lines if key in ln), None)
        if hit:
            return hit[:200]
    return f"exit statuses {rcs}"


def stress(launches: int, world: int, train_args: list, launcher: str = "torchrun", jobs: int = 1,
           timeout: float = 120.0, seed0: int = 0) -> dict:
    """``launches`` launches (``--seed`` seed0 + i each), ``jobs`` at a time; a summary with every failure."""
    t0 = time.monotonic()

    def one(i):
        return launch(world, [*train_args, "--seed", str(seed0 + i), "--quiet"], launcher, timeout)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(one, range(launches)))
    failures = [dict(launch=i, rc=r["rc"], cause=r["cause"], stderr_tail=r["stderr"][-2000:])
                for i, r in enumerate(results) if not r["ok"]]
    return {"launches": launches, "world": world, "launcher": launcher, "args": train_args,
            "failed": len(failures), "left_behind": sum(len(r["left_behind"]) for r in results),
            "causes": dict(collections.Counter(f["cause"] for f in failures)),
            "failures": failures, "seconds": round(time.monotonic() - t0, 1),
            "seconds_per_launch": sorted(r["seconds"] for r in results)[len(results) // 2] if results else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--launches", type=int, default=200)
    p.add_argument("--world", type=int, default=4)
    p.add_argument("--launcher", choices=("torchrun", "direct"), default="torchrun")
    p.add_argument("--jobs", type=int, default=1, help="launches at a time")
    p.add_argument("--launch-timeout", type=float, default=180.0)
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--out", help="write the summary as JSON here")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: slimops.distributed.train's arguments")
    a = p.parse_args(argv)
    args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    summary = stress(a.launches, a.world, args, a.launcher, a.jobs, a.launch_timeout, a.seed0)
    text = json.dumps(summary, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
