"""CUDA C++ kernel of mx_convert (``slimops._C_cuda.mx_convert``, raw device pointers), canonical layout."""

from __future__ import annotations

import torch

from .._backend import native_module
from ..mx.formats import MXFormat
from .cpu import new_outputs


def convert_2d(data: torch.Tensor, scales: torch.Tensor, src: MXFormat, dst: MXFormat, block_size: int,
               length: int, rounding: str = "nearest", out: "tuple | None" = None,
               counts: "torch.Tensor | None" = None):
    """Into ``out`` when given; the report into ``counts`` (zeroed here, added to by the kernel)."""
    rows = data.shape[0]
    out_data, out_scales = new_outputs(rows, length, dst, block_size, data.device) if out is None else out
    if counts is not None:
        counts.zero_()
    with torch.cuda.device(data.device):
        native_module("_C_cuda").mx_convert(data.data_ptr(), scales.data_ptr(), rows, length, out_data.data_ptr(),
                                            out_scales.data_ptr(), src.format_id, dst.format_id, block_size,
                                            rounding == "truncate",
                                            torch.cuda.current_stream(data.device).cuda_stream,
                                            0 if counts is None else counts.data_ptr())
    return out_data, out_scales
