"""Slice-and-Scale's grid for ``slimops check`` (:mod:`slimops.check`): ``mx_convert`` bit for bit with the reference.

Every supported pair (narrower MXINT, narrower MXFP, and each format to itself)
under both roundings, on random packed bytes (every element code, fp8 NaN/Inf
codes, scale bytes over-weighted at 0, 1, 127, 253, 254, 255) with a partial
last block; then each block size, blocks along axis 0, an anchor made by
``mx_quantize`` from values over many decades, and an empty tensor.
"""

from __future__ import annotations

import torch

from .._backend import use_backend
from ..check import Case
from ..mx.check import edge_input, random_packed, seed_of
from ..mx.formats import BLOCK_SIZES, FORMATS
from .reference import ROUNDINGS, check_pair


def pairs() -> list:
    """Every (src, dst) that ``mx_convert`` accepts."""
    out = []
    for s in FORMATS.values():
        for d in FORMATS.values():
            try:
                check_pair(s, d)
            except ValueError:
                continue
            out.append((s.name, d.name))
    return out


def _convert(src, dst, bs, axis, length, rounding):
    return lambda d, s: torch.ops.slimops.mx_convert(d, s, src, dst, bs, axis, length, rounding)


def _random_case(src, dst, bs, shape, rounding, label, axis=-1):
    def make(device):
        data, scales = random_packed(src, shape, bs, seed=seed_of(src, dst, bs, shape))
        if axis == 0:
            data, scales = data.t().contiguous(), scales.t().contiguous()
        return data.to(device), scales.to(device)

    return Case("mx_convert", make, _convert(src, dst, bs, axis, shape[1], rounding), None,
                f"{src}->{dst} {rounding} bs{bs} {label}")


def _anchor_case(src, dst, rounding):
    """An anchor as users make them: ``mx_quantize`` (reference) of values with the edge values."""
    shape, bs = (6, 135), 32

    def make(device):
        x = edge_input(shape, torch.float32, src, bs, seed=seed_of(src, dst))
        with use_backend("reference"):
            data, scales = torch.ops.slimops.mx_quantize(x, src, bs, -1, "floor", False, 0)
        return data.to(device), scales.to(device)

    return Case("mx_convert", make, _convert(src, dst, bs, -1, shape[1], rounding), None,
                f"{src}->{dst} {rounding} quantized anchor")


def cases() -> list:
    out = []
    for src, dst in pairs():
        for rounding in ROUNDINGS:
            out.append(_random_case(src, dst, 32, (9, 150), rounding, "random codes"))
        if src != dst:
            out.append(_anchor_case(src, dst, "nearest"))
    for src, dst in (("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1"), ("mxfp8_e5m2", "mxfp6_e3m2")):
        for bs in BLOCK_SIZES:
            out.append(_random_case(src, dst, bs, (33, 4 * bs + 3), "nearest", f"33x{4 * bs + 3}"))
        out.append(_random_case(src, dst, 32, (10, 70), "nearest", "axis 0", axis=0))
    out.append(_random_case("mxint8", "mxint2", 32, (0, 64), "nearest", "empty"))
    return out
