"""C++ CPU kernel of mx_convert (``slimops._C.mx_convert``, raw pointers), canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.formats import MXFormat


def _C():
    """The module whose kernels run (the benchmark swaps in a second copy for another path)."""
    return native_module("_C")


def new_outputs(rows: int, length: int, dst: MXFormat, block_size: int, device=None) -> tuple:
    """Fresh (data, scales) of the canonical layout in ``dst``."""
    return (torch.empty(rows, dst.packed_bytes(length), dtype=torch.uint8, device=device),
            torch.empty(rows, -(-length // block_size), dtype=torch.uint8, device=device))


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest", out: "tuple | None" = None,
               counts: "torch.Tensor | None" = None):
    """Into ``out`` (contiguous (rows, bytes), (rows, nblocks) uint8) when given; the report into ``counts``."""
    rows = data.shape[0]
    out_data, out_scales = new_outputs(rows, length, dst, block_size) if out is None else out
    _C().mx_convert(data.data_ptr(), scales.data_ptr(), rows, length, out_data.data_ptr(),
                                   out_scales.data_ptr(), src.format_id, dst.format_id, block_size,
                                   rounding == "truncate", torch.get_num_threads(),
                                   0 if counts is None else counts.data_ptr())
    return out_data, out_scales
