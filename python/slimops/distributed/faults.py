"""Faults injected on purpose (``--inject-fault``), to test that a failing rank ends the whole launch cleanly.

A spec is ``RANK:PHASE[:KIND][@EPOCH]``:

* ``PHASE``: ``setup`` (before the process group is joined), ``forward`` (a
  forward halo exchange), ``backward`` (sending halo gradients back),
  ``refetch`` (SAR's backward fetching a halo again: GAT, or the learned
  codec), ``report`` (rank 0 writing ``--report``), ``teardown`` (after
  training, before the process group ends), or an epoch number (at that
  epoch's start; the older ``RANK:EPOCH[:exit]`` form).
* ``KIND``: ``raise`` (default; an exception, reported as that rank's error),
  ``exit`` (the process ends at once with status 3, after one line on stderr,
  as a crash that leaves a last word), ``stall`` (the rank stops answering:
  it sleeps, the others time out, the launcher kills it).
* ``@EPOCH``: only in that epoch (default: the first time the phase is reached).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

PHASES = {"setup": "setup", "forward": "forward exchange", "backward": "backward exchange", "refetch": "re-fetch",
          "report": "report", "teardown": "teardown"}
KINDS = ("raise", "exit", "stall")


class InjectedFault(RuntimeError):
    """The exception a ``raise`` fault throws."""


@dataclasses.dataclass
class Fault:
    rank: int
    phase: str  # a value of PHASES, or "epoch N"
    kind: str = "raise"
    epoch: "int | None" = None
    fired: bool = dataclasses.field(default=False, compare=False)

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """``RANK:PHASE[:KIND][@EPOCH]`` (module docstring); ValueError naming what is wrong."""
        body, _, at = spec.partition("@")
        bits = body.split(":")
        if len(bits) not in (2, 3) or not bits[0].isdigit():
            raise ValueError(f"--inject-fault {spec!r}: expected RANK:PHASE[:KIND][@EPOCH]")
        kind = bits[2] if len(bits) == 3 else "raise"
        if kind not in KINDS:
            raise ValueError(f"--inject-fault {spec!r}: kind must be one of {KINDS}, got {kind!r}")
        if at and not at.isdigit():
            raise ValueError(f"--inject-fault {spec!r}: @EPOCH must be a whole number, got {at!r}")
        if bits[1].isdigit():
            return cls(int(bits[0]), f"epoch {int(bits[1])}", kind)
        if bits[1] not in PHASES:
            raise ValueError(f"--inject-fault {spec!r}: phase must be an epoch number or one of {list(PHASES)}")
        return cls(int(bits[0]), PHASES[bits[1]], kind, int(at) if at else None)

    def hit(self, rank: int, phase: str, epoch: "int | None" = None) -> None:
        """Fire if this is the rank, the phase and (when the spec names one) the epoch; once."""
        if self.fired or rank != self.rank or phase != self.phase or (self.epoch is not None and epoch != self.epoch):
            return
        self.fired = True
        where = phase + (f" (epoch {epoch})" if epoch is not None and not phase.startswith("epoch") else "")
        if self.kind == "exit":
            print(f"slimops.distributed.train: rank {rank}: injected fault: exiting in {where}", file=sys.stderr,
                  flush=True)
            os._exit(3)
        if self.kind == "stall":
            while True:  # stop answering; the launcher ends this process
                time.sleep(3600)
        raise InjectedFault(f"rank {rank}: injected fault in {where}")
