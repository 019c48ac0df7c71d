"""CUDA C++ kernel of mx_convert (``slimops._C_cuda.mx_convert``, raw device pointers), canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.formats import MXFormat


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest"):
    rows = data.shape[0]
    out_data = torch.empty(rows, dst.packed_bytes(length), dtype=torch.uint8, device=data.device)
    out_scales = torch.empty(rows, -(-length // block_size), dtype=torch.uint8, device=data.device)
    with torch.cuda.device(data.device):
        native_module("_C_cuda").mx_convert(data.data_ptr(), scales.data_ptr(), rows, length, out_data.data_ptr(),
                                            out_scales.data_ptr(), src.format_id, dst.format_id, block_size,
                                            rounding == "truncate",
                                            torch.cuda.current_stream(data.device).cuda_stream)
    return out_data, out_scales
