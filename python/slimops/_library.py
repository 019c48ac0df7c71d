"""The one ``torch.library`` object of slimops and the checks every family shares.

Each family defines its op schemas on :data:`lib` in its own ``schemas.py``
(``slimops/<family>/schemas.py``), with their fake kernels and autograd.
"""

from __future__ import annotations

import torch

lib = torch.library.Library("slimops", "DEF")

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def check(cond: bool, exc: type, msg) -> None:
    """Raise ``exc(msg)`` unless ``cond``; ``msg`` names the argument and what was expected. ``msg`` may be a
    function returning it, so that a check on a hot path formats nothing when it passes."""
    if not cond:
        raise exc(msg() if callable(msg) else msg)


def check_tensor(t, arg: str) -> None:
    check(isinstance(t, torch.Tensor), TypeError, f"{arg} must be a torch.Tensor, got {type(t).__name__}")


def check_float(t: torch.Tensor, arg: str) -> None:
    check_tensor(t, arg)
    check(t.dtype in FLOAT_DTYPES, TypeError, f"{arg} must be float32, bfloat16 or float16, got {t.dtype}")
