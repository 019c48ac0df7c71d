"""The MX family's grid for ``slimops check`` (:mod:`slimops.check`): every kernel bit for bit with the reference.

Per op and dtype: every format and block size on a (5, 2 * block + 7) input
with the edge values (±0, fp32 and dtype subnormals, round-half ties, the
format's max and above, the dtype's max, ±Inf, NaN, an all-zero block, a block
of fp32 subnormals), then RCEIL scales, stochastic rounding with a seed above
2^32, blocks along axis 0 of a 3-d tensor, a transposed view, an empty tensor,
a (64, 1031) input (SIMD tails, threads) and the ``out=`` variants. Dequantize
decodes random packed bytes (every element code, MXINT's -2^(b-1), fp8 NaN
codes) with scale bytes over-weighted at 0, 1, 127, 253, 254 and 255 (NaN).
"""

from __future__ import annotations

import math
import zlib

import torch

from ..check import Case
from .formats import BLOCK_SIZES, FORMATS, get_format

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
EXTRA_FORMATS = ("mxfp8_e4m3", "mxfp6_e3m2", "mxfp4_e2m1", "mxint8", "mxint2")
SCALE_EDGES = (0, 1, 127, 253, 254, 255)
LARGE = 4096  # elements: larger cases are left out in Triton's interpreter


def seed_of(*parts) -> int:
    """A seed from a case's parameters, the same in every process (``hash`` of a str is not)."""
    return zlib.crc32(repr(parts).encode()) % 10007


def edge_input(shape, dtype: torch.dtype, fmt: str, block_size: int, seed: int = 0) -> torch.Tensor:
    """Values over many decades (fixed seed), and where the shape has room, blocks along the last axis
    that hold: the finite edges (±0, fp32 and dtype subnormals, the format's max, above it, 448, 449);
    the dtype's ±max; +Inf; -Inf; NaN; all zeros; fp32 subnormals only; round-half ties."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g) * 4)
    flat = x.view(-1, shape[-1])
    f = get_format(fmt)
    tiny = {torch.float32: 1e-45, torch.bfloat16: 9.2e-41, torch.float16: 6e-8}[dtype]
    big = torch.finfo(dtype).max
    ties = (torch.arange(block_size, dtype=torch.float32) + 0.5) * 2.0 ** -3
    placements = [  # (row, block, values at the block's start)
        (0, 0, [0.0, -0.0, 1e-40, -3e-39, tiny, f.max_value, -f.max_value * 1.0625, f.max_value * 2.0, 448.0,
                449.0]),
        (0, 1, [big, -big]),
        (1, 0, [0.0] * block_size),
        (1, 1, [float("inf")]),
        (2, 0, torch.linspace(-1e-39, 1e-39, block_size).tolist()),
        (2, 1, [float("nan")]),
        (3, 0, [float("-inf")]),
        (3, 1, (ties * torch.where(torch.arange(block_size) % 2 == 0, 1.0, -1.0)).tolist()),
    ]
    rows, length = flat.shape
    for r, b, values in placements:
        values = values[:block_size]
        if r < rows and (b + 1) * block_size <= length:
            flat[r, b * block_size:b * block_size + len(values)] = torch.tensor(values)
    return x.to(dtype)


def random_packed(fmt: str, shape, block_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random packed elements (rows, bytes) and scale bytes (rows, blocks) for ``shape = (rows, length)``,
    the padding bits of each row's last byte zero (as quantize writes them)."""
    rows, length = shape
    f = get_format(fmt)
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (rows, f.packed_bytes(length)), dtype=torch.uint8, generator=g)
    if length * f.bits % 8:
        data[:, -1] &= (1 << (length * f.bits % 8)) - 1
    nblocks = -(-length // block_size)
    scales = torch.randint(100, 155, (rows, nblocks), dtype=torch.uint8, generator=g)
    edge = torch.tensor(SCALE_EDGES, dtype=torch.uint8)
    pick = torch.rand(rows, nblocks, generator=g) < 0.3
    scales = torch.where(pick, edge[torch.randint(0, len(edge), (rows, nblocks), generator=g)], scales)
    return data, scales


def _quantize_case(op, dtype, fmt, bs, shape, label, axis=-1, mode="floor", stochastic=False, seed=0, view=None):
    fn = getattr(torch.ops.slimops, op)

    def make(device):
        x = edge_input(shape, dtype, fmt, bs, seed=seed_of(fmt, bs, shape)).to(device)
        return (view(x) if view else x,)

    return Case(op, make, lambda x: fn(x, fmt, bs, axis, mode, stochastic, seed), dtype, f"{fmt} bs{bs} {label}",
                large=math.prod(shape) > LARGE)


def _dequantize_case(dtype, fmt, bs, shape, label, axis=-1):
    def make(device):
        data, scales = random_packed(fmt, shape, bs, seed=seed_of(fmt, bs, shape))
        if axis == 0:  # blocks along axis 0: the packed tensors transposed
            data, scales = data.t().contiguous(), scales.t().contiguous()
        return data.to(device), scales.to(device)

    return Case("mx_dequantize", make,
                lambda d, s: torch.ops.slimops.mx_dequantize(d, s, fmt, bs, axis, shape[1], dtype), dtype,
                f"{fmt} bs{bs} {label}", large=math.prod(shape) > LARGE)


def _out_cases(dtype) -> list:
    """The ``out=`` variants (written straight into the caller's buffer), under the ops they run."""
    fmt, bs, shape = "mxfp8_e4m3", 32, (5, 71)

    def dq(d, s):
        out = torch.empty(shape, dtype=dtype, device=d.device)
        torch.ops.slimops.mx_dequantize_out(d, s, fmt, bs, -1, shape[1], out)
        return out

    def fq(x):
        out = torch.empty_like(x)
        torch.ops.slimops.mx_fake_quantize_out(x, fmt, bs, -1, "floor", False, 0, out)
        return out

    return [Case("mx_dequantize", lambda dev: tuple(t.to(dev) for t in random_packed(fmt, shape, bs, 7)), dq,
                 dtype, f"{fmt} bs{bs} out="),
            Case("mx_fake_quantize", lambda dev: (edge_input(shape, dtype, fmt, bs, 7).to(dev),), fq, dtype,
                 f"{fmt} bs{bs} out=")]


def cases() -> list:
    out = []
    for dtype in DTYPES:
        for op in ("mx_quantize", "mx_fake_quantize"):
            for fmt in FORMATS:
                for bs in BLOCK_SIZES:
                    out.append(_quantize_case(op, dtype, fmt, bs, (5, 2 * bs + 7), "edges"))
            for fmt in EXTRA_FORMATS:
                out += [
                    _quantize_case(op, dtype, fmt, 32, (5, 71), "rceil", mode="rceil"),
                    _quantize_case(op, dtype, fmt, 16, (5, 71), "stochastic", stochastic=True, seed=2**40 + 17),
                    _quantize_case(op, dtype, fmt, 32, (70, 9, 6), "axis 0", axis=0),
                    _quantize_case(op, dtype, fmt, 32, (40, 77), "transposed view", axis=0, view=lambda x: x.t()),
                    _quantize_case(op, dtype, fmt, 64, (64, 1031), "64x1031"),
                ]
            out.append(_quantize_case(op, dtype, "mxfp4_e2m1", 32, (0, 64), "empty"))
        for fmt in FORMATS:
            for bs in BLOCK_SIZES:
                out.append(_dequantize_case(dtype, fmt, bs, (5, 2 * bs + 7), "random codes"))
        for fmt in EXTRA_FORMATS:
            out += [_dequantize_case(dtype, fmt, 32, (9, 70), "axis 0", axis=0),
                    _dequantize_case(dtype, fmt, 64, (64, 1031), "64x1031")]
        out.append(_dequantize_case(dtype, "mxint4", 32, (0, 40), "empty"))
        out += _out_cases(dtype)
    return out
