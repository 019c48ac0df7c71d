"""The mxgemm ops' kernels: argument checks, the canonical layout, and the choice of implementation.

Each implementation module (``reference``, ``cpu``, ``triton``) works on the canonical layout:
``x2d`` [M, K] contiguous (every leading dimension of ``x`` flattened, the MX family's
``to_2d``), the packed weight contiguous, the output [M, N]. The kernels registered here check
the arguments, ask :func:`slimops._backend.resolve` which implementation runs, and give the
output the caller's leading dimensions. The reference is the default kernel (every device).
"""

from __future__ import annotations

import torch

from .._backend import current_backend, register_family, resolve
from ..mx.dispatch import to_2d
from . import cpu, reference, schemas

FAMILY = "mxgemm"
# The implementations besides the reference, in the order "auto" prefers them.
# CPU: the C++ kernels (Triton runs on CPU tensors only in its interpreter, never picked by auto).
# CUDA: Triton (no CUDA C++ kernel: it is to be written only where it measures faster than Triton).
# auto does not pick it there: on an H200 (bench/reports/gpu-h200/5-bench.log, 4096 x 14336, bf16, M = 1
# and 16) dequantize + F.linear took 0.09-0.36 ms and the untuned Triton kernel 1.1-1.3 ms. Until a tile
# sweep (bench/mxgemm/triton_tiles.py) makes it faster, auto runs the reference on CUDA; Triton runs when
# selected (set_backend("triton")).
register_family(FAMILY, {op: {"cpu": ("native", "triton"), "cuda": ("triton",)} for op in schemas.OPS},
                auto={"cuda": ()})


_chosen: dict = {}  # (backend selected, op, device type, dtype) -> module: what is built does not change


def implementation(op: str, t: torch.Tensor):
    """The module that runs ``op`` on ``t``'s device under the selected backend."""
    key = (current_backend(), op, t.device.type, t.dtype)
    impl = _chosen.get(key)
    if impl is None:
        choice = resolve(FAMILY, op, t.device.type, t.dtype)  # raises, naming the reason, when it cannot run
        if choice == "native" and t.device.type == "cpu":
            impl = cpu
        elif choice == "triton":
            from . import triton as impl  # imported only when Triton is selected
        else:
            impl = reference
        _chosen[key] = impl
    return impl


def _weight(w_data: torch.Tensor, w_scales: torch.Tensor):
    return w_data.contiguous(), w_scales.view(torch.uint8).contiguous()


def _register(dispatch_key: "str | None", pick) -> None:
    """Register both kernels for ``dispatch_key`` (None: the default kernel of every device)."""

    @torch.library.register_kernel("slimops::mx_linear", dispatch_key)
    def mx_linear(x, w_data, w_scales, w_fmt, block_size, bias=None):
        f = schemas.check_linear_args(x, w_data, w_scales, w_fmt, block_size, bias)
        n, k = w_data.shape[0], x.shape[-1]
        x2d = to_2d(x, x.dim() - 1)
        impl = reference if x2d.shape[0] * n * k == 0 else pick("mx_linear", x)
        y2d = impl.linear_2d(x2d, *_weight(w_data, w_scales), f, block_size,
                             None if bias is None else bias.contiguous())
        return y2d.view(*x.shape[:-1], n)

    @torch.library.register_kernel("slimops::mx_linear_backward", dispatch_key)
    def mx_linear_backward(grad_y, w_data, w_scales, w_fmt, block_size, in_features):
        f = schemas.check_backward_args(grad_y, w_data, w_scales, w_fmt, block_size, in_features)
        n = w_data.shape[0]
        g2d = to_2d(grad_y, grad_y.dim() - 1)
        impl = reference if g2d.shape[0] * n * in_features == 0 else pick("mx_linear_backward", grad_y)
        gx = impl.linear_backward_2d(g2d, *_weight(w_data, w_scales), f, block_size, in_features)
        return gx.view(*grad_y.shape[:-1], in_features)


_register(None, lambda op, t: reference)
_register("cpu", implementation)
_register("cuda", implementation)
