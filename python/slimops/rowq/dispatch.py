"""The rowq ops' kernels: argument checks, then the implementation :func:`slimops._backend.resolve` picks.

The reference is the default kernel (every device); on CPU the C++ kernels
(``auto``) or Triton in its interpreter (when asked for); on CUDA the CUDA C++
kernels (``auto``, when ``slimops._C_cuda`` is built) or Triton. The CUDA order
is the other families' default; no GPU measurement has ranked the two yet.
"""

from __future__ import annotations

import torch

from .._backend import register_family, resolve
from . import cpu, cuda, reference, schemas

FAMILY = "rowq"
register_family(FAMILY, {op: {"cpu": ("native", "triton"), "cuda": ("native", "triton")} for op in schemas.OPS})


def implementation(op: str, t: torch.Tensor):
    """The module that runs ``op`` on ``t``'s device under the selected backend (the reference when empty)."""
    if t.numel() == 0:
        return reference
    choice = resolve(FAMILY, op, t.device.type, torch.float32)
    if choice == "native" and t.device.type == "cpu" and cpu.native_available():
        return cpu
    if choice == "native" and t.device.type == "cuda" and cuda.native_available():
        return cuda
    if choice == "triton":
        from . import triton as triton_impl  # imported only when Triton is selected

        return triton_impl
    return reference


def _register(dispatch_key: "str | None", pick) -> None:
    @torch.library.register_kernel("slimops::rowq_quantize", dispatch_key)
    def rowq_quantize(x, bits, stochastic, seed):
        schemas.check_quantize_args(x, bits)
        return pick("rowq_quantize", x).quantize(x, bits, stochastic, seed)

    @torch.library.register_kernel("slimops::rowq_dequantize", dispatch_key)
    def rowq_dequantize(data, params, bits, length, dtype):
        schemas.check_dequantize_args(data, params, bits, length, dtype)
        impl = reference if data.shape[0] * length == 0 else pick("rowq_dequantize", data)
        return impl.dequantize(data, params, bits, length, dtype)


_register(None, lambda op, t: reference)
_register("cpu", implementation)
_register("cuda", implementation)
