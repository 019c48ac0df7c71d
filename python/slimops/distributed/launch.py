"""Run W local processes joined by torch.distributed (gloo over loopback), bounded in time.

:func:`spawn` forks W workers that each call ``fn(rank, world, *args)`` after
joining a process group through a file store in a temporary directory (no port
to pick), and returns their results in rank order. A worker that raises makes
``spawn`` raise :class:`WorkerError` with every worker's error; workers still
running after ``timeout`` seconds are killed (by their own pid) and reported.
"""

from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import tempfile
import time
import traceback


class WorkerError(RuntimeError):
    def __init__(self, errors: dict, results: dict):
        self.errors, self.results = errors, results
        lines = [f"rank {r}: {e.strip().splitlines()[-1] if e.strip() else e}" for r, e in sorted(errors.items())]
        super().__init__("distributed workers failed:\n  " + "\n  ".join(lines))


def _worker(fn, rank, world, store, timeout, args, queue):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout))
        out = fn(rank, world, *args)
        # plain pickle bytes: tensors by value, not by shared-memory handles that die with this process
        queue.put((rank, "ok", pickle.dumps(out)))
    except BaseException:  # noqa: BLE001
        queue.put((rank, "error", traceback.format_exc()))
    finally:
        queue.close()
        queue.join_thread()  # the result is flushed to the pipe
        os._exit(0)  # never wait on the process group's teardown


def spawn(fn, world: int, *args, timeout: float = 60.0, collective_timeout: float | None = None) -> list:
    """``[fn(0, world, *args), ..., fn(world - 1, world, *args)]``, each in its own forked process."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="slimops-dist-") as tmp:
        store = os.path.join(tmp, "store")
        ct = collective_timeout if collective_timeout is not None else timeout
        procs = [ctx.Process(target=_worker, args=(fn, r, world, store, ct, args, queue), daemon=True)
                 for r in range(world)]
        for p in procs:
            p.start()
        results, errors = {}, {}
        deadline = time.monotonic() + timeout
        while len(results) + len(errors) < world and time.monotonic() < deadline:
            try:
                rank, status, value = queue.get(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
            except queue_mod.Empty:
                if all(not p.is_alive() for p in procs) and queue.empty():
                    break
                continue
            if status == "ok":
                results[rank] = pickle.loads(value)  # noqa: S301 - bytes from our own forked worker
            else:
                errors[rank] = value
        for r, p in enumerate(procs):
            p.join(timeout=max(0.0, deadline - time.monotonic()) if r not in results and r not in errors else 5.0)
            if p.is_alive():
                p.kill()
                p.join(5.0)
            if r not in results and r not in errors:
                errors[r] = (f"worker ended without a result (exit code {p.exitcode})" if p.exitcode is not None
                             else f"worker still running after {timeout:g} s, killed")
        queue.close()
    if errors:
        raise WorkerError(errors, results)
    return [results[r] for r in range(world)]


def run_train(rank: int, world: int, argv: list) -> dict:
    """``slimops.distributed.train.main(argv)`` in a spawned worker (the process group is already joined)."""
    from .train import main

    return main(argv)
