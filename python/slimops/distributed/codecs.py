"""Wire codecs of the halo exchange: each encodes a (rows, f) float tensor into one flat uint8 buffer.

The buffer is exactly what is handed to torch.distributed, so its length is the
byte count of the exchange, and :meth:`WireCodec.nbytes` predicts it from the
shape alone (the receiver allocates its buffer from it):

* ``none``: fp32, ``4 f`` bytes a row.
* MX (``mxfp8``, ``mxint8``, ``mxfp6``, ``mxfp4``, ``mxint4``, ``mxint2``): the
  ``slimops::mx_quantize`` packed elements then the E8M0 scales (blocks of 32
  along the row), ``packed_bytes(f) + ceil(f / 32)`` bytes a row.
* ``int8``, ``int4``, ``int2``: the per-row stochastic integer codec
  (``slimops::rowq_quantize``, the :mod:`slimops.rowq` family), ``8 + ceil(f b / 8)`` bytes a
  row: fp32 (min, scale) of every row first, then the packed codes.

The learned low-rank codec is not a wire codec: it is a pair of linear layers
around the exchange (:mod:`slimops.distributed.learned`), and its code travels as ``none``.
"""

from __future__ import annotations

import math

import torch

from .. import rowq  # noqa: F401  (the rowq ops and their kernels)
from ..mx.formats import get_format

MX_CODECS = ("mxfp8", "mxint8", "mxfp6", "mxfp4", "mxint4", "mxint2")
INT_CODECS = ("int8", "int4", "int2")
CODECS = ("none",) + MX_CODECS + INT_CODECS + ("learned",)


class WireCodec:
    """Encode on the sender, decode on the receiver; ``nbytes`` is the exact buffer length."""

    name = "none"
    ratio = 1.0  # nominal compression ratio against fp32, for schedules

    def nbytes(self, rows: int, f: int) -> int:
        return rows * f * 4

    def encode(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        return x.detach().float().contiguous().view(torch.uint8).reshape(-1)

    def decode(self, buf: torch.Tensor, rows: int, f: int) -> torch.Tensor:
        return buf.view(torch.float32).reshape(rows, f)

    def check(self, x: torch.Tensor, rows: int, f: int, what: str) -> None:
        if x.dim() != 2 or x.shape[0] != rows or x.shape[1] != f:
            raise ValueError(f"{what}: the halo plan expects a ({rows}, {f}) tensor to send, got {list(x.shape)}")

    def __repr__(self) -> str:
        return self.name


class MXCodec(WireCodec):
    block = 32

    def __init__(self, fmt: str, stochastic: bool = False):
        self.fmt = get_format(fmt)
        self.name = fmt
        self.stochastic = stochastic
        self.ratio = 32.0 / self.fmt.bits

    def _split(self, f: int) -> tuple[int, int]:
        return self.fmt.packed_bytes(f), -(-f // self.block)

    def nbytes(self, rows: int, f: int) -> int:
        d, s = self._split(f)
        return rows * (d + s)

    def encode(self, x, seed):
        if x.numel() == 0:
            return torch.empty(0, dtype=torch.uint8, device=x.device)
        data, scales = torch.ops.slimops.mx_quantize(x.detach().float().contiguous(), self.fmt.name, self.block, -1,
                                                     "floor", self.stochastic, seed)
        return torch.cat([data.reshape(-1), scales.reshape(-1)])

    def decode(self, buf, rows, f):
        if rows == 0 or f == 0:
            return torch.zeros(rows, f, device=buf.device)
        d, s = self._split(f)
        data = buf[: rows * d].view(rows, d)
        scales = buf[rows * d:].view(rows, s)
        return torch.ops.slimops.mx_dequantize(data, scales, self.fmt.name, self.block, -1, f, torch.float32)


class IntCodec(WireCodec):
    def __init__(self, bits: int, stochastic: bool = True):
        self.bits = bits
        self.name = f"int{bits}"
        self.stochastic = stochastic
        self.ratio = 32.0 / bits

    def nbytes(self, rows, f):
        return rows * (math.ceil(f * self.bits / 8) + 8)

    def encode(self, x, seed):
        data, params = torch.ops.slimops.rowq_quantize(x.detach().float().contiguous(), self.bits, self.stochastic,
                                                       seed)
        return torch.cat([params.view(torch.uint8).reshape(-1), data.reshape(-1)])  # params first: aligned

    def decode(self, buf, rows, f):
        d = math.ceil(f * self.bits / 8)
        params = buf[: rows * 8].view(torch.float32).view(rows, 2)
        data = buf[rows * 8:].view(rows, d)
        return torch.ops.slimops.rowq_dequantize(data, params, self.bits, f, torch.float32)


def get_codec(name: str, mx_stochastic: bool = False) -> WireCodec:
    """The wire codec called ``name`` (``learned`` travels as ``none``)."""
    if name in ("none", "learned"):
        return WireCodec()
    if name in MX_CODECS:
        return MXCodec(name, mx_stochastic)
    if name in INT_CODECS:
        return IntCodec(int(name[3:]))
    raise ValueError(f"codec must be one of {CODECS}, got {name!r}")


def error_bound(codec: WireCodec, x: torch.Tensor) -> torch.Tensor:
    """Per-element bound on |decode(encode(x)) - x| (for tests): exact for none, per row for int, per block for MX."""
    if isinstance(codec, IntCodec):
        scale = (x.amax(1, keepdim=True) - x.amin(1, keepdim=True)) / ((1 << codec.bits) - 1)
        step = scale if codec.stochastic else scale / 2
        return (step * (1 + 1e-5) + 1e-6 * x.abs().amax(1, keepdim=True)).expand_as(x)
    if isinstance(codec, MXCodec):
        f = codec.fmt
        rows, n = x.shape
        nb = -(-n // codec.block)
        pad = torch.zeros(rows, nb * codec.block - n)
        amax = torch.cat([x.abs(), pad], 1).view(rows, nb, codec.block).amax(-1)
        # E = floor(log2 amax); shared exponent E - emax; the widest element step is 2^(E - mbits)
        # (ints: mbits = bits - 2); round to nearest errs by half a step, stochastic by less than one.
        big = torch.floor(torch.log2(amax.clamp_min(1e-30)))
        step = torch.exp2(big - f.mbits) * (1.0 if codec.stochastic else 0.5)
        top = amax - f.max_value * torch.exp2(big - f.emax)  # saturation: clipped to max * 2^shared
        bound = (top.clamp_min(0) + step) * (1 + 1e-6)
        return bound.repeat_interleave(codec.block, 1)[:, :n]
    return torch.zeros_like(x)
