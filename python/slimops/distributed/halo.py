"""A rank's halo context: its plan, its transport and the codec state every exchange reads.

:class:`HaloContext` is what the ring steps (:mod:`.ring`), the exchanges (:mod:`.exchange`) and the GAT
attention (:mod:`.attention`) take; ``set_codec`` switches the codec (a schedule calls it each epoch).
"""

from __future__ import annotations

from .codecs import WireCodec, get_codec
from .comm import Comm
from .partition import HaloPlan

MODES = ("sar", "all")


class HaloContext:
    """Plan + transport + codec state of one rank; ``set_codec`` switches the codec (schedules call it per epoch)."""

    def __init__(self, plan: HaloPlan, comm: Comm, codec: str = "none", mode: str = "sar",
                 backward_codec: str = "same", mx_stochastic: bool = False, ratio: float = 8.0, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if backward_codec not in ("same", "none"):
            raise ValueError(f"backward_codec must be 'same' or 'none', got {backward_codec!r}")
        self.plan, self.comm, self.mode = plan, comm, mode
        self.device = plan.device
        self.backward_codec, self.mx_stochastic = backward_codec, mx_stochastic
        self.seed, self.counter = seed, 0
        self.set_codec(codec, ratio)

    def set_codec(self, name: str, ratio: float = 1.0) -> None:
        self.codec_name = name
        self.learned = name == "learned"
        self.ratio = float(ratio)
        self.wire = get_codec(name, self.mx_stochastic)
        self.bwd_wire = self.wire if self.backward_codec == "same" else WireCodec()

    def new_call(self) -> int:
        """A fresh id for one exchange (one layer's forward); its wire seeds derive from it."""
        self.counter += 1
        return self.counter

    def wire_seed(self, call: int, dst: int, backward: bool = False) -> int:
        """Seed of a stochastic codec for what this rank sends ``dst`` in exchange ``call`` (forward or backward):
        the same whatever the mode or the order peers are visited in, so SAR re-sends the forward's very bits."""
        return (self.seed * 1_000_003 + self.plan.rank * 7919 + dst * 613 + call * 104_729
                + (50_331_653 if backward else 0)) & 0x7FFFFFFF

    def describe(self) -> str:
        return f"learned/{self.ratio:.3g}" if self.learned else self.codec_name
