"""The OCP Microscaling (MX v1.0) element formats and their parameters.

Every MX format is a block of ``block_size`` elements sharing one E8M0 scale
``X = 2**shared_exp``; an element ``P`` decodes to ``X * P``.

FP elements (sign | exponent | mantissa, bias ``2**(E-1) - 1``) keep subnormals
and saturate at their max normal. MXINTb elements are b-bit two's complement
with an implicit scale of ``2**-(b-2)`` (so their ``emax`` is 0) and the
symmetric range ``±(2**(b-1) - 1)``.

The integer parameters below (``ebits``, ``mbits``, ``bias``, ``max_code``) are
exactly what the shared element header ``kernels/mx/mx_element.cuh`` uses; an
MXINT element is encoded there as an FP element with ``bias = 1``,
``mbits = b - 2`` and no exponent field, which is the same fixed-point grid.
"""

from __future__ import annotations

import dataclasses

import torch

BLOCK_SIZES = (16, 32, 64)
SCALE_MODES = ("floor", "rceil")
E8M0_BIAS = 127
E8M0_NAN = 0xFF
# The integers the native kernels take for dtypes and scale modes (kernels/mx/mx_params.h).
DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
SCALE_MODE_CODES = {"floor": 0, "rceil": 1}


@dataclasses.dataclass(frozen=True)
class MXFormat:
    name: str
    kind: str  # "fp" or "int"
    bits: int
    ebits: int  # exponent bits (0 for int)
    mbits: int  # mantissa bits (b-2 for int: the fractional bits)
    bias: int  # exponent bias (1 for int, see the module docstring)
    emax: int  # exponent of the largest power of two the element can hold
    max_code: int  # largest magnitude code (sign bit excluded)
    max_value: float  # largest finite magnitude
    has_nan_code: bool  # fp8 formats reserve a NaN encoding (0x7F with sign)
    format_id: int  # the integer the native kernels take

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def elems_per_group(self) -> int:
        """Elements in the smallest whole-byte group: 1 (8-bit), 2 (4-bit), 4 (6- and 2-bit)."""
        return {8: 1, 4: 2, 6: 4, 2: 4}[self.bits]

    def packed_bytes(self, length: int) -> int:
        """Bytes holding ``length`` elements packed as a little-endian bit stream."""
        return (length * self.bits + 7) // 8

    def int_code_min(self) -> int:
        """Most negative two's complement code accepted on dequantize (-2**(b-1))."""
        return -(1 << (self.bits - 1))


def _fp(name, fid, ebits, mbits, max_code, has_nan):
    bias = (1 << (ebits - 1)) - 1
    exp_field = max_code >> mbits
    mant = max_code & ((1 << mbits) - 1)
    max_value = (1 + mant / (1 << mbits)) * 2.0 ** (exp_field - bias)
    emax = exp_field - bias
    return MXFormat(name, "fp", 1 + ebits + mbits, ebits, mbits, bias, emax, max_code,
                    max_value, has_nan, fid)


def _int(name, fid, bits):
    max_code = (1 << (bits - 1)) - 1
    return MXFormat(name, "int", bits, 0, bits - 2, 1, 0, max_code,
                    max_code / (1 << (bits - 2)), False, fid)


FORMATS: dict[str, MXFormat] = {
    f.name: f
    for f in (
        _fp("mxfp8_e4m3", 0, 4, 3, 0x7E, True),  # max 448, emax 8
        _fp("mxfp8_e5m2", 1, 5, 2, 0x7B, True),  # max 57344, emax 15
        _fp("mxfp6_e3m2", 2, 3, 2, 0x1F, False),  # max 28, emax 4
        _fp("mxfp6_e2m3", 3, 2, 3, 0x1F, False),  # max 7.5, emax 2
        _fp("mxfp4_e2m1", 4, 2, 1, 0x7, False),  # max 6, emax 2
        _int("mxint8", 5, 8),  # max 127/64
        _int("mxint6", 6, 6),  # max 31/16
        _int("mxint4", 7, 4),  # max 7/4
        _int("mxint2", 8, 2),  # max 1
    )
}

ALIASES = {"mxfp8": "mxfp8_e4m3", "mxfp6": "mxfp6_e2m3", "mxfp4": "mxfp4_e2m1"}
FORMAT_BY_ID = {f.format_id: f for f in FORMATS.values()}


def get_format(fmt: "str | MXFormat") -> MXFormat:
    """Look a format up by name or alias; raise ``ValueError`` naming the choices."""
    if isinstance(fmt, MXFormat):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format name (str), got {type(fmt).__name__}")
    key = ALIASES.get(fmt.lower(), fmt.lower())
    if key not in FORMATS:
        names = ", ".join(list(FORMATS) + list(ALIASES))
        raise ValueError(f"fmt: unknown MX format {fmt!r}; expected one of: {names}")
    return FORMATS[key]
