"""Kernel registrations of the GATv2 ops: the reference everywhere, and per device the backend ``resolve`` picks.

Declared as their own backend family, ``gatv2`` (``slimops info`` lists it next to ``gat``). Each backend
module (``v2_cpu.py``, ``v2_triton.py``, ``v2_cuda.py``) has ``forward`` and ``backward`` with the
reference's signatures, on contiguous tensors.
"""

from __future__ import annotations

import importlib

import torch

from .._backend import register_family, resolve
from . import v2_reference as reference
from .reference import check_csr_values
from .v2_schemas import check_backward_args, check_forward_args

OPS = {
    "gatv2_forward": {"cpu": ("native", "triton"), "cuda": ("triton", "native")},
    "gatv2_backward": {"cpu": ("native", "triton"), "cuda": ("triton", "native")},
}

FAMILY = "gatv2"
register_family(FAMILY, OPS)


def pick(op: str, t: torch.Tensor) -> str:
    """'reference', 'native' or 'triton': what runs ``op`` on ``t``'s device now."""
    return resolve(FAMILY, op, t.device.type, t.dtype)


def _impl(op: str, t: torch.Tensor):
    choice = pick(op, t)
    if choice == "native":
        name = "v2_cpu" if t.device.type == "cpu" else "v2_cuda"
    elif choice == "triton":
        name = "v2_triton"
    else:
        return None
    return importlib.import_module(f"{__package__}.{name}")


def _run(op, fn_name, tensors, n_src, indptr_at, scalars):
    args = [t.contiguous() for t in tensors]
    mod = _impl(op, args[0])
    if mod is None:
        mod = reference
        if args[0].device.type == "cpu":
            check_csr_values(args[indptr_at], args[indptr_at + 1], n_src)
    return getattr(mod, fn_name)(*args, *scalars)


def _forward(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout, seed, offset):
    n_src = check_forward_args(xl, xr, att, edge_attr, w_edge, indptr, indices, negative_slope, dropout)[0]
    return _run("gatv2_forward", "forward", (xl, xr, att, edge_attr, w_edge, indptr, indices), n_src, 5,
                (negative_slope, dropout, seed, offset))


def _backward(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse, negative_slope, dropout, seed,
              offset):
    n_src = check_backward_args(grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse,
                                negative_slope, dropout)[0]
    return _run("gatv2_backward", "backward", (grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse),
                n_src, 6, (negative_slope, dropout, seed, offset))


# The same kernel for every device (None: the default) and for "cpu" and "cuda": it checks the
# arguments, then runs what ``pick`` chooses (the reference where nothing else is available).
for _key in (None, "cpu", "cuda"):
    torch.library.register_kernel("slimops::gatv2_forward", _key, _forward)
    torch.library.register_kernel("slimops::gatv2_backward", _key, _backward)
