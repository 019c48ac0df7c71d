"""Launching a family's Triton kernels the way ``torch.compile`` can trace (shared by every family)."""

from __future__ import annotations

import contextlib

import torch


def launch(kernel, grid, device: torch.device, *args, **meta) -> None:
    """``kernel[grid](*args, **meta)`` through ``torch.library.wrap_triton`` on ``device``.

    ``wrap_triton`` lets ``torch.compile`` trace into the kernel; a torch that does
    not accept an interpreted kernel (``TRITON_INTERPRET=1``) gets the plain launch.
    """
    try:
        launcher = torch.library.wrap_triton(kernel)
    except RuntimeError:
        launcher = kernel
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        launcher[grid](*args, **meta)
