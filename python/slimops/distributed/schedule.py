"""Compression schedules: which codec (or learned ratio) is in force at each epoch.

The nominal ratio of a codec is 32 / bits against fp32 (none 1, 8-bit 4, 6-bit
5.33, 4-bit 8, 2-bit 16). With ``T`` epochs, ``t`` = 0 .. T-1, ``R0`` the ratio
of ``--codec`` (``--ratio`` for learned) and ``s = t / (T - 1)`` (1 when T = 1):

* ``fixed``:  r(t) = R0
* ``exp``:    r(t) = R0 ** (1 - s)            (exponential decay in the epoch, to 1)
* ``linear``: r(t) = R0 - (R0 - 1) * s       (linear decay, to 1)

A codec on a ladder (``mxint2 -> mxint4 -> mxint8 -> none``, ``mxfp4 -> mxfp6 ->
mxfp8 -> none``, ``int2 -> int4 -> int8 -> none``) starts at ``--codec`` and at
epoch t uses the least compressed rung whose nominal ratio is still >= r(t), so
the bytes never exceed what r(t) allows and the last epoch (r = 1) runs
uncompressed. The learned codec uses a latent of ceil(f / r(t)) units.
"""

from __future__ import annotations

SCHEDULES = ("fixed", "exp", "linear")
LADDERS = (("mxint2", "mxint4", "mxint8", "none"), ("mxfp4", "mxfp6", "mxfp8", "none"),
           ("int2", "int4", "int8", "none"))
BITS = {"mxint2": 2, "mxint4": 4, "mxint8": 8, "mxfp4": 4, "mxfp6": 6, "mxfp8": 8,
        "int2": 2, "int4": 4, "int8": 8, "none": 32}


def nominal_ratio(codec: str) -> float:
    return 32.0 / BITS[codec]


def ladder(codec: str) -> tuple:
    """The rungs from ``codec`` up to none (``(codec,)`` for none and learned)."""
    for rungs in LADDERS:
        if codec in rungs:
            return rungs[rungs.index(codec):]
    return (codec,)


def ratio_at(schedule: str, r0: float, epoch: int, epochs: int) -> float:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is outside 0 .. {epochs - 1}")
    s = epoch / (epochs - 1) if epochs > 1 else 1.0
    if schedule == "fixed":
        return float(r0)
    if schedule == "exp":
        return float(r0) ** (1.0 - s)
    return float(r0) - (float(r0) - 1.0) * s


def codec_at(codec: str, schedule: str, epoch: int, epochs: int, ratio: float = 8.0) -> tuple[str, float]:
    """(codec name, ratio) in force at ``epoch``; the ratio is the learned codec's or the rung's nominal one."""
    if codec == "learned":
        return "learned", ratio_at(schedule, ratio, epoch, epochs)
    rungs = ladder(codec)
    if schedule == "fixed" or codec == "none":
        return codec, nominal_ratio(codec) if codec in BITS else 1.0
    r = ratio_at(schedule, nominal_ratio(rungs[0]), epoch, epochs)
    for rung in reversed(rungs):
        if nominal_ratio(rung) >= r - 1e-9:
            return rung, nominal_ratio(rung)
    return rungs[0], nominal_ratio(rungs[0])
