"""Kernel registrations (dispatch) of the GAT ops: the reference everywhere, and per device the backend ``resolve`` picks.

Each backend module (``cpu.py``, ``triton.py``, ``cuda.py``) has ``forward``,
``backward`` with the reference's signatures, on contiguous tensors. The reference
checks the CSR's values first on every device (it is the slow path anyway), so a
malformed CSR on CUDA never reaches a torch op's device-side assert.
"""

from __future__ import annotations

import torch

from .._backend import register_family, resolve
from . import reference
from .schemas import check_backward_args, check_forward_args, check_merge_args, check_scores_args

OPS = {
    "gat_forward": {"cpu": ("native", "triton"), "cuda": ("triton", "native")},
    "gat_backward": {"cpu": ("native", "triton"), "cuda": ("triton", "native")},
    # FusedGATConv's node scores: a C++ pass on the CPU; elsewhere the reference's two torch ops
    "gat_scores": {"cpu": ("native",)},
    "gat_scores_backward": {"cpu": ("native",)},
}

FAMILY = "gat"
register_family(FAMILY, OPS)


def pick(op: str, t: torch.Tensor) -> str:
    """'reference', 'native' or 'triton': what runs ``op`` on ``t``'s device now."""
    return resolve(FAMILY, op, t.device.type, t.dtype)


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
    return [t if t is None else t.contiguous() for t in ts]


def _forward(h, a_src, a_dst, indptr, indices, negative_slope, dropout, seed, offset, a_edge=None):
    n_src = check_forward_args(h, a_src, a_dst, indptr, indices, negative_slope, dropout, a_edge)[0]
    *args, a_edge = _contig(h, a_src, a_dst, indptr, indices, a_edge)
    mod = _impl("gat_forward", h)
    if mod is None:
        reference.check_csr_values(args[3], args[4], n_src)
        mod = reference
    return mod.forward(*args, negative_slope, dropout, seed, offset, a_edge)


def _backward(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout, seed, offset,
              a_edge=None):
    n_src = check_backward_args(grad_out, h, a_src, a_dst, indptr, indices, out, lse, negative_slope, dropout,
                                a_edge)[0]
    *args, a_edge = _contig(grad_out, h, a_src, a_dst, indptr, indices, out, lse, a_edge)
    mod = _impl("gat_backward", h)
    if mod is None:
        reference.check_csr_values(args[4], args[5], n_src)
        mod = reference
    return mod.backward(*args, negative_slope, dropout, seed, offset, a_edge)


# The same kernel for every device (None: the default) and for "cpu" and "cuda": it checks the
# arguments, then runs what ``pick`` chooses (the reference where nothing else is available).
for _key in (None, "cpu", "cuda"):
    torch.library.register_kernel("slimops::gat_forward", _key, _forward)
    torch.library.register_kernel("slimops::gat_backward", _key, _backward)


@torch.library.register_kernel("slimops::gat_merge", None)
def _merge(outs, lses):
    check_merge_args(outs, lses)
    return reference.merge(outs, lses)


def _scores(h, att):
    check_scores_args(h, att)
    mod = _impl("gat_scores", h) or reference
    return mod.scores(h.contiguous(), att)


def _scores_backward(grad, h, att, grad_h=None):
    check_scores_args(h, att, grad, grad_h)
    mod = _impl("gat_scores_backward", h) or reference
    return mod.scores_backward(grad.contiguous(), h.contiguous(), att, None if grad_h is None else grad_h.contiguous())


for _key in (None, "cpu", "cuda"):
    torch.library.register_kernel("slimops::gat_scores", _key, _scores)
    torch.library.register_kernel("slimops::gat_scores_backward", _key, _scores_backward)
