"""C++ CPU kernel of mx_convert (``slimops._C.mx_convert``, raw pointers), canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.formats import MXFormat


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest"):
    rows = data.shape[0]
    out_data = torch.empty(rows, dst.packed_bytes(length), dtype=torch.uint8)
    out_scales = torch.empty(rows, -(-length // block_size), dtype=torch.uint8)
    native_module("_C").mx_convert(data.data_ptr(), scales.data_ptr(), rows, length, out_data.data_ptr(),
                                   out_scales.data_ptr(), src.format_id, dst.format_id, block_size,
                                   rounding == "truncate", torch.get_num_threads())
    return out_data, out_scales
