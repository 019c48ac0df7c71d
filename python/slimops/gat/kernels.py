"""Kernel registrations of the GAT ops: the reference everywhere, and per device the backend ``resolve`` picks.

Each backend module (``cpu.py``, ``triton.py``, ``cuda.py``) has ``forward``,
``backward`` with the reference's signatures, on contiguous tensors.
"""

from __future__ import annotations

import torch

from . import reference
from .schemas import check_backward_args, check_forward_args, check_merge_args

OPS = {
    "gat_forward": {"cpu": ("native",), "cuda": ("triton", "native")},
    "gat_backward": {"cpu": ("native",), "cuda": ("triton", "native")},
}

try:  # the house's per-family backend selection
    from .._backend import register_family, resolve as _resolve

    register_family("gat", OPS)

    def pick(op: str, t: torch.Tensor) -> str:
        return _resolve("gat", op, t.device.type, t.dtype)
except ImportError:  # before the house layout lands on main
    from .._backend import resolve as _resolve_old

    def pick(op: str, t: torch.Tensor) -> str:
        return _resolve_old(t.device.type)


def _impl(op: str, t: torch.Tensor):
    choice = pick(op, t)
    if choice == "native":
        if t.device.type == "cpu":
            from . import cpu as mod
        else:
            from . import cuda as mod
        return mod
    if choice == "triton":
        from . import triton as mod
        return mod
    return None


def _contig(*ts):
    return [t.contiguous() for t in ts]


def _forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset):
    n_src = check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout)[0]
    args = _contig(h, a_src, a_dst, indptr, indices)
    mod = _impl("gat_forward", h)
    if mod is None:
        if h.device.type == "cpu":
            reference.check_csr_values(args[3], args[4], n_src)
        return reference.forward(*args, negative_slope, dropout, seed, offset)
    return mod.forward(*args, negative_slope, dropout, seed, offset)


def _backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset):
    n_src = check_backward_args(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout)[0]
    args = _contig(grad_out, h, a_src, a_dst, indptr, indices, out, lse)
    mod = _impl("gat_backward", h)
    if mod is None:
        if h.device.type == "cpu":
            reference.check_csr_values(args[4], args[5], n_src)
        return reference.backward(*args, negative_slope, dropout, seed, offset)
    return mod.backward(*args, negative_slope, dropout, seed, offset)


# One kernel for every device: it checks the arguments, then runs what ``pick`` chooses.
torch.library.register_kernel("slimops::gat_forward", None, _forward)
torch.library.register_kernel("slimops::gat_backward", None, _backward)


@torch.library.register_kernel("slimops::gat_merge", None)
def _merge(outs, lses):
    check_merge_args(outs, lses)
    return reference.merge(outs, lses)
