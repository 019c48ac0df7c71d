"""W local processes joined by torch.distributed, bounded in time: the one rank launcher of slimops.

:func:`spawn_ranks` runs ``fn(rank, world, *args)`` in W processes that have
joined a process group (gloo over loopback on the CPU, NCCL with one GPU per
rank on CUDA) through a file store in a fresh temporary directory (no port to
pick, none to race for), and returns the results in rank order. The benchmark
runner's multi-process suites, the distributed family's tests and experiment
scripts all use it.

The ranks are forked from a **fork server**, never from the caller. Forking the
caller itself is unsafe once it runs other threads: torch's OpenMP pool,
threads that ``torch.compile`` or a peer library started. A child forked while
such a thread held a lock waits on that lock forever (``slimops bench`` hung
that way: the distributed suite's first rank slept on a futex in
``torch.randn`` after the MX suite had used the thread pool). The fork server
is a fresh interpreter, started once per calling process with ``torch`` and
``slimops`` imported and no op ever run, so every rank starts from a
single-threaded process. Consequences: ``fn`` and ``args`` are pickled (define
``fn`` at module level), and a rank sees the environment the calling process
had when its first :func:`spawn_ranks` started the server.

A rank that raises or dies fails the call: the others get ``timeout_s`` (+ 10)
seconds to report (each of their collectives fails within the timeout), then
are killed (by their own pid), and :class:`RankError`
names the rank that failed first (one that died without a word, else the first
to report an error) with every rank's last line and that rank's traceback.
Ranks still running ``run_timeout_s`` after the start are killed and reported.

Ranks never outlive the caller. Each holds the read end of a pipe whose only
write end stays in the caller; a thread in the rank waits on it and ends the
rank (``os._exit(1)``) at end of file, that is, as soon as the caller is gone,
even when it was killed by a signal and ran no cleanup (daemonic processes are
only reaped at a normal exit, and the fork server is their parent, not the
caller).
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import tempfile
import threading
import time
import traceback

import torch

_PRELOAD = ["torch", "slimops"]


class RankError(RuntimeError):
    """A rank raised, died or ran past its time; ``errors`` maps rank -> traceback or reason, ``first`` is the
    rank that failed first (None when none can be named), ``results`` the ranks that did finish."""

    def __init__(self, what: str, errors: dict, first: "int | None", results: "dict | None" = None):
        self.errors, self.first, self.results = errors, first, results or {}
        lines = [f"rank {r}: {_last_line(e)}" for r, e in sorted(errors.items())]
        msg = f"{what}: rank {first} failed first" if first is not None else f"{what}: failed"
        tb = errors.get(first, "") if first is not None else ""
        super().__init__(msg + "\n  " + "\n  ".join(lines) +
                         (f"\nrank {first}'s traceback:\n{tb.rstrip()}" if "Traceback" in tb else ""))


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1].strip() if lines else text)[:300]


def dist_backend(device: str) -> str:
    """The process group's backend for ranks that compute on ``device``: NCCL on CUDA, gloo elsewhere."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def threads_per_rank(world: int) -> int:
    """The cores of this machine shared out among ``world`` ranks (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // world)


def _context():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _end_with_caller(caller_alive) -> None:
    """End this rank when the caller's end of ``caller_alive`` closes (the caller exited or was killed)."""

    def watch():
        try:
            caller_alive.recv()  # nothing is ever sent: this returns only by end of file
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="slimops-caller-watch", daemon=True).start()


def _rank_main(rank, world, store, backend, timeout_s, threads, fn, args, queue, caller_alive):
    _end_with_caller(caller_alive)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    try:
        import torch.distributed as dist

        torch.set_num_threads(threads)
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(backend, init_method=f"file://{store}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s))
        out = fn(rank, world, *args)
        # plain pickle bytes: tensors by value, not by shared-memory handles that die with this process
        queue.put((rank, "ok", pickle.dumps(out)))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        queue.put((rank, "error", traceback.format_exc()))
    finally:
        queue.close()
        queue.join_thread()  # the message is in the pipe
        os._exit(0)  # never wait on the process group's teardown (see slimops.distributed.train.end_process)


def spawn_ranks(fn, world: int, args: tuple = (), *, device: str = "cpu", timeout_s: float = 60.0,
                run_timeout_s: float = 3600.0, threads: "int | None" = None, what: str = "ranks") -> list:
    """``[fn(0, world, *args), ..., fn(world - 1, world, *args)]``, one process per rank (module docstring).

    ``timeout_s`` bounds every collective of the process group, ``run_timeout_s`` the whole call; ``threads``
    is each rank's torch thread count (default: the cores shared out, :func:`threads_per_rank`); ``what``
    names the run in :class:`RankError`."""
    if world < 1:
        raise ValueError(f"spawn_ranks: world must be >= 1, got {world}")
    backend = dist_backend(device)
    if backend == "nccl" and torch.cuda.device_count() < world:
        raise RankError(what, {0: f"world {world} needs one GPU per rank, {torch.cuda.device_count()} visible"},
                        None)
    ctx = _context()
    queue = ctx.Queue()
    caller_alive, alive_w = ctx.Pipe(duplex=False)  # alive_w stays here; the ranks watch for its end
    threads = threads or threads_per_rank(world)
    try:
        with tempfile.TemporaryDirectory(prefix="slimops-ranks-") as tmp:
            store = os.path.join(tmp, "store")
            procs = [ctx.Process(target=_rank_main, daemon=True,
                                 args=(r, world, store, backend, timeout_s, threads, fn, args, queue, caller_alive))
                     for r in range(world)]
            for p in procs:
                p.start()
            results, errors, first, died = _collect(procs, queue, world, timeout_s, run_timeout_s)
            queue.close()
    finally:
        caller_alive.close()
        alive_w.close()
    if errors:  # a rank that died is the cause: the others fail because their peer is gone
        raise RankError(what, errors, died[0] if died else first if first is not None else min(errors), results)
    return [results[r] for r in range(world)]


def _collect(procs, queue, world, timeout_s, run_timeout_s):
    """Results and errors as the ranks report; stop the rest soon after the first failure."""
    results, errors, first, died = {}, {}, None, []
    deadline, stop_at = time.monotonic() + run_timeout_s, None
    while len(results) + len(errors) < world:
        now = time.monotonic()
        if now > deadline or (stop_at is not None and now > stop_at):
            break
        try:
            rank, status, value = queue.get(timeout=0.2)
        except queue_mod.Empty:
            dead = [r for r, p in enumerate(procs) if p.exitcode is not None and r not in results and r not in errors]
            if dead and queue.empty():
                time.sleep(0.5)  # a message written just before the exit
                if queue.empty():
                    for r in dead:
                        errors[r] = f"rank {r} exited with code {procs[r].exitcode} without a result"
                    died += dead
                    stop_at = stop_at or time.monotonic() + timeout_s + 10.0
            continue
        if status == "ok":
            results[rank] = pickle.loads(value)  # noqa: S301 - bytes from our own child process
        else:
            errors[rank] = value
            first = rank if first is None else first
            stop_at = stop_at or time.monotonic() + timeout_s + 10.0
    for r, p in enumerate(procs):
        p.join(timeout=1.0 if r in results or r in errors else 0.0)
        if p.is_alive():
            p.kill()  # this child, by its pid
            p.join(5.0)
        if r not in results and r not in errors:
            errors[r] = (f"still running {run_timeout_s:g} s after the start, killed" if stop_at is None
                         else f"stopped after rank {first if first is not None else died[0]} failed")
    return results, errors, first, died
