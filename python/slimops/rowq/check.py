"""The row codec's grid for ``slimops check`` (:mod:`slimops.check`): ``rowq_quantize`` / ``rowq_dequantize``
bit for bit with the reference.

Quantize per input dtype: 2, 4 and 8 bits, nearest and stochastic rounding
(seeds 1234, 2^32 + 5 and -1: all 64 bits count), odd shapes (1 x 1, 5 x 7,
13 x 70, 300 x 129, empty rows and columns), and rows that are constant, hold
±Inf, or hold a NaN first or later (the parameters are NaN for both, on every backend).
Dequantize per output dtype: random packed codes with random (min, scale)
parameters, zero scales included.
"""

from __future__ import annotations

import torch

from ..check import Case
from .schemas import BITS, packed_row_bytes

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
SHAPES = ((1, 1), (5, 7), (13, 70), (300, 129), (0, 5), (4, 0))
SEEDS = (1234, 2**32 + 5, -1)
LARGE = 4096  # elements: larger cases are left out in Triton's interpreter


def rows_input(shape, dtype: torch.dtype, seed: int, edges: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 5
    if edges and shape[0] >= 6 and shape[1] >= 4:
        x[0] = 3.25  # constant row: scale 0
        x[1, 2] = float("inf")
        x[2, 1] = float("-inf")
        x[3, 0] = float("nan")  # NaN first in its row
        x[4, 3] = float("nan")  # NaN later in its row
    return x.to(dtype)


def _quantize_case(dtype, bits, stochastic, seed, shape, edges, label):
    return Case("rowq_quantize", lambda dev: (rows_input(shape, dtype, sum(shape) + bits, edges).to(dev),),
                lambda x: torch.ops.slimops.rowq_quantize(x, bits, stochastic, seed), dtype, label,
                large=shape[0] * shape[1] > LARGE)


def _dequantize_case(dtype, bits, shape):
    def make(device):
        g = torch.Generator().manual_seed(sum(shape) * bits)
        rows, length = shape
        data = torch.randint(0, 256, (rows, packed_row_bytes(length, bits)), dtype=torch.uint8, generator=g)
        params = torch.randn(rows, 2, generator=g) * torch.tensor([10.0, 0.5])
        params[::3, 1] = 0.0
        return data.to(device), params.to(device)

    return Case("rowq_dequantize", make,
                lambda d, p: torch.ops.slimops.rowq_dequantize(d, p, bits, shape[1], dtype), dtype,
                f"{bits} bits {shape[0]}x{shape[1]}", large=shape[0] * shape[1] > LARGE)


def cases() -> list:
    out = []
    for dtype in DTYPES:
        for bits in BITS:
            for stochastic in (False, True):
                rnd = "stochastic" if stochastic else "nearest"
                for shape in SHAPES:
                    out.append(_quantize_case(dtype, bits, stochastic, 1234, shape, False,
                                              f"{bits} bits {rnd} {shape[0]}x{shape[1]}"))
                out.append(_quantize_case(dtype, bits, stochastic, 1234, (9, 37), True,
                                          f"{bits} bits {rnd} constant/inf/nan rows"))
            for seed in SEEDS[1:]:
                out.append(_quantize_case(dtype, bits, True, seed, (13, 70), False, f"{bits} bits seed {seed}"))
            for shape in SHAPES:
                out.append(_dequantize_case(dtype, bits, shape))
    return out
