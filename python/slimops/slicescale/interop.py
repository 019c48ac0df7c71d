"""Interoperate with MX data people already have: gpt-oss MXFP4 checkpoints and torchao's MXTensor.

**gpt-oss** (its checkpoints and Triton MoE kernels) stores an MXFP4 weight ``name`` as

* ``<name>_blocks``: uint8 ``[..., K/32, 16]``, 32 E2M1 codes per block, two per byte,
  element 0 in the low nibble;
* ``<name>_scales``: uint8 ``[..., K/32]``, E8M0 bytes (bias 127),

which is exactly slimops' ``mxfp4_e2m1`` layout with ``block_size=32`` along the last axis
(``data [..., K/2]`` viewed as ``[..., K/32, 16]``): conversion is a view, bit-exact both ways.

**torchao** (``torchao.prototype.mx_formats.mx_tensor.MXTensor``, 0.18): blocks along the last
axis, ``qdata`` in ``float8_e4m3fn`` / ``float8_e5m2`` (fp8), packed uint8 (fp4, low nibble
first, as slimops) or one 6-bit code per byte (fp6); ``scale`` float8_e8m0fnu
``[..., K/block]``. MXINT has no torchao counterpart.
"""

from __future__ import annotations

import re

import torch

from ..mx import MXTensor, get_format
from ..mx import reference as mxref

GPT_OSS_BLOCK = 32
_BLOCKS_SUFFIX, _SCALES_SUFFIX = "_blocks", "_scales"


# ----------------------------------------------------------------------------- gpt-oss


def to_gpt_oss(t: MXTensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An mxfp4_e2m1 MXTensor (block 32, last axis, K % 32 == 0) -> (blocks, scales) of gpt-oss."""
    nd = len(t.shape)
    if t.fmt != "mxfp4_e2m1" or t.block_size != GPT_OSS_BLOCK or t.axis != nd - 1:
        raise ValueError(f"gpt-oss layout holds mxfp4_e2m1 in blocks of 32 along the last axis; got {t.fmt}, "
                         f"block_size={t.block_size}, axis={t.axis} of a {nd}-d tensor")
    k = t.shape[-1]
    if k % GPT_OSS_BLOCK:
        raise ValueError(f"gpt-oss layout needs the last dimension to be a multiple of 32, got {k}")
    blocks = t.data.reshape(*t.shape[:-1], k // GPT_OSS_BLOCK, GPT_OSS_BLOCK // 2).contiguous()
    return blocks, t.scales.contiguous()


def from_gpt_oss(blocks: torch.Tensor, scales: torch.Tensor) -> MXTensor:
    """gpt-oss ``(<name>_blocks, <name>_scales)`` -> an mxfp4_e2m1 MXTensor (block 32, last axis)."""
    if blocks.dtype != torch.uint8 or scales.dtype not in (torch.uint8, torch.float8_e8m0fnu):
        raise TypeError(f"gpt-oss blocks and scales must be uint8, got {blocks.dtype} and {scales.dtype}")
    if blocks.dim() < 2 or blocks.shape[-1] != GPT_OSS_BLOCK // 2 or tuple(scales.shape) != tuple(blocks.shape[:-1]):
        raise ValueError(f"gpt-oss blocks must be [..., K/32, 16] and scales [..., K/32], got {list(blocks.shape)} "
                         f"and {list(scales.shape)}")
    lead = blocks.shape[:-2]
    nblk = blocks.shape[-2]
    data = blocks.reshape(*lead, nblk * (GPT_OSS_BLOCK // 2)).contiguous()
    shape = torch.Size([*lead, nblk * GPT_OSS_BLOCK])
    return MXTensor(data, scales.view(torch.uint8).contiguous(), "mxfp4_e2m1", GPT_OSS_BLOCK, len(shape) - 1, shape)


def import_gpt_oss(state: dict) -> dict:
    """A gpt-oss state dict -> the same with every ``<name>_blocks``/``<name>_scales`` pair as one
    MXTensor under ``<name>``; other tensors are kept."""
    out: dict = {}
    for key, value in state.items():
        m = re.fullmatch(r"(.*)" + _BLOCKS_SUFFIX, key)
        if m and (m.group(1) + _SCALES_SUFFIX) in state:
            out[m.group(1)] = from_gpt_oss(value, state[m.group(1) + _SCALES_SUFFIX])
        elif not (key.endswith(_SCALES_SUFFIX) and key[: -len(_SCALES_SUFFIX)] + _BLOCKS_SUFFIX in state):
            out[key] = value
    return out


def export_gpt_oss(state: dict) -> dict:
    """Inverse of :func:`import_gpt_oss`: every MXTensor (mxfp4_e2m1, block 32, last axis) becomes the pair."""
    out: dict = {}
    for key, value in state.items():
        if isinstance(value, MXTensor):
            out[key + _BLOCKS_SUFFIX], out[key + _SCALES_SUFFIX] = to_gpt_oss(value)
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------------- torchao


def _torchao_dtype(fmt: str):
    names = {"mxfp8_e4m3": torch.float8_e4m3fn, "mxfp8_e5m2": torch.float8_e5m2,
             "mxfp4_e2m1": torch.float4_e2m1fn_x2, "mxfp6_e2m3": "fp6_e2m3", "mxfp6_e3m2": "fp6_e3m2"}
    if fmt not in names:
        raise ValueError(f"torchao's MXTensor has no {fmt} (it holds mxfp8_e4m3, mxfp8_e5m2, mxfp6_e2m3, "
                         f"mxfp6_e3m2, mxfp4_e2m1)")
    return names[fmt]


def to_torchao(t: MXTensor, orig_dtype: torch.dtype = torch.float32):
    """slimops MXTensor (blocks along the last axis) -> torchao ``MXTensor``; the bytes are kept."""
    from torchao.prototype.mx_formats.mx_tensor import MXTensor as TorchaoMX
    from torchao.quantization.quantize_.common.kernel_preference import KernelPreference

    if t.axis != len(t.shape) - 1:
        raise ValueError(f"torchao's MXTensor blocks the last axis; this tensor has axis={t.axis} of {len(t.shape)}")
    elem = _torchao_dtype(t.fmt)
    if t.fmt.startswith("mxfp8"):
        qdata = t.data.view(elem)
    elif t.fmt.startswith("mxfp6"):  # torchao keeps one 6-bit code per byte
        rows = t.data.reshape(-1, t.data.shape[-1])
        qdata = mxref.unpack(rows, 6, t.shape[-1]).to(torch.uint8).reshape(t.shape)
    else:
        qdata = t.data
    if t.shape[-1] % t.block_size:
        raise ValueError(f"torchao needs whole blocks: last dimension {t.shape[-1]} is not a multiple of "
                         f"{t.block_size}")
    return TorchaoMX(qdata.contiguous(), t.scales.view(torch.float8_e8m0fnu).contiguous(), elem, t.block_size,
                     orig_dtype, KernelPreference.EMULATED, None, False)


def from_torchao(tao) -> MXTensor:
    """torchao ``MXTensor`` (unswizzled scales) -> slimops MXTensor, bit-exact."""
    if getattr(tao, "is_swizzled_scales", False):
        raise ValueError("torchao MXTensor with swizzled scales is not supported; use is_swizzled_scales=False")
    elem = tao.elem_dtype
    names = {torch.float8_e4m3fn: "mxfp8_e4m3", torch.float8_e5m2: "mxfp8_e5m2",
             torch.float4_e2m1fn_x2: "mxfp4_e2m1", "fp6_e2m3": "mxfp6_e2m3", "fp6_e3m2": "mxfp6_e3m2"}
    if elem not in names:
        raise ValueError(f"unsupported torchao element dtype {elem!r}")
    fmt = get_format(names[elem])
    shape = torch.Size(tao.shape)
    q = tao.qdata.view(torch.uint8)
    if fmt.bits == 6:
        rows = q.reshape(-1, shape[-1]).to(torch.int64)
        data = mxref.pack(rows, 6).reshape(*shape[:-1], fmt.packed_bytes(shape[-1]))
    else:
        data = q.contiguous()
    scales = tao.scale.view(torch.uint8).reshape(*shape[:-1], -(-shape[-1] // tao.block_size)).contiguous()
    return MXTensor(data, scales, fmt.name, tao.block_size, len(shape) - 1, shape)
