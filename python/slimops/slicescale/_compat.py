"""Temporary: the library object and check helper until the house layout lands."""
from __future__ import annotations

from .._ops import _check as check  # noqa: F401
from .._ops import lib  # noqa: F401


def resolve_backend(device_type: str) -> str:
    from .._backend import native_module, resolve

    choice = resolve(device_type)
    if choice == "native":
        mod = native_module("_C" if device_type == "cpu" else "_C_cuda")
        if not hasattr(mod, "mx_convert"):
            return "reference"
    return choice
