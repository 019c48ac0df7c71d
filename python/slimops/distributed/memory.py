"""What a rank's memory and time are: the resident set from /proc (its floor, its peak, a reset of the peak
where the kernel allows), a probe of the floor, setup peak and epoch times, and the bytes autograd saves.
"""

from __future__ import annotations

import time

import torch

from .comm import Comm


def proc_status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (``VmHWM``: peak resident set; ``VmRSS``: now), bytes; 0 where absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_peak() -> int:
    return proc_status_bytes("VmHWM")


def rss_now() -> int:
    return proc_status_bytes("VmRSS")


def reset_rss_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class MemoryProbe:
    """Per rank: the resident floor before any graph is loaded (the runtime: Python, torch, the process group), the
    peak while the graph, partition and plan are set up, the setup time and every epoch's wall time."""

    def __init__(self):
        reset_rss_peak()
        self.floor, self.t0 = rss_now(), time.perf_counter()
        self.setup_peak, self.setup_seconds, self.starts = 0, 0.0, []

    def setup_done(self) -> None:
        self.setup_peak, self.setup_seconds = rss_peak(), time.perf_counter() - self.t0

    def epoch_start(self) -> None:
        self.starts.append(time.perf_counter())

    def report(self, comm: Comm, train_seconds: float) -> dict:
        ends = self.starts[1:] + [self.starts[0] + train_seconds] if self.starts else []
        every = comm.all_gather(torch.tensor([self.floor, self.setup_peak, int(self.setup_seconds * 1e6)],
                                             dtype=torch.int64))
        return {"rss_floor_bytes": [int(b) for b in every[:, 0]], "rss_setup_peak_bytes": [int(b) for b in every[:, 1]],
                "setup_seconds": [int(u) / 1e6 for u in every[:, 2]],
                "epoch_seconds": [e - s for s, e in zip(self.starts, ends)]}


class SavedTensorBytes:
    """Bytes autograd saves for backward inside the block: distinct storages, ``exclude``'s (parameters, the plan)
    left out. What SAR shrinks: all-at-once saves every received halo, SAR none."""

    def __init__(self, exclude=()):
        self.exclude = {self._key(t) for t in exclude}
        self.total = 0

    @staticmethod
    def _key(t: torch.Tensor):
        if t.layout != torch.strided:
            return ("sparse", id(t))
        return t.untyped_storage().data_ptr()

    @staticmethod
    def _nbytes(t: torch.Tensor) -> int:
        if t.layout == torch.sparse_csr:
            return sum(x.numel() * x.element_size() for x in (t.crow_indices(), t.col_indices(), t.values()))
        if t.layout != torch.strided:
            return 0
        return t.untyped_storage().nbytes()

    def __enter__(self):
        seen = set(self.exclude)

        def pack(t):
            k = self._key(t)
            if k not in seen:
                seen.add(k)
                self.total += self._nbytes(t)
            return t

        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
