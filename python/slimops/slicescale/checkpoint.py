"""Elastic checkpoints: one anchor file (MXINT8 or MXFP8), any lower format at load time.

File layout (safetensors): a weight ``name`` quantized to MX is stored as two uint8 tensors

* ``name.mx_data``: the packed elements (the logical shape with the blocked axis replaced by
  its packed byte count), and
* ``name.mx_scales``: the E8M0 scale bytes (the blocked axis replaced by the block count),

and the file's metadata (strings only) holds ``"slimops.format_version": "1"`` and, per weight,
``"slimops.mx.<name>"``: JSON ``{"fmt", "block_size", "axis", "shape"}``. Other tensors
(biases, norms) are stored as they are.

* :func:`save_anchor` writes a state dict / module (float weights are quantized, MXTensors kept);
* :func:`load_anchor` reads it back, optionally converting every MX weight to a lower format with
  Slice-and-Scale (``mx_convert``: packed to packed, no high precision);
* :func:`convert_file` is ``slimops convert IN --to FMT -o OUT``: an anchor converted to a lower
  format, or a float checkpoint (a Hugging Face model's, say) quantized into an anchor.

Every write goes to a temporary file in the target's directory, flushed and fsynced, then
``os.replace``-d onto the target: an interrupted write never leaves a partial file under that name.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Callable

import torch

from ..mx import MXTensor, get_format, quantize

FORMAT_VERSION = "1"
VERSION_KEY = "slimops.format_version"
META_PREFIX = "slimops.mx."
DATA_SUFFIX, SCALES_SUFFIX = ".mx_data", ".mx_scales"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read as promised (corrupt, truncated, inconsistent)."""


def default_select(name: str, t: torch.Tensor) -> bool:
    """Which float tensors become MX weights by default: floating, at least 2-d, last dim >= 16."""
    return t.is_floating_point() and t.dim() >= 2 and t.shape[-1] >= 16


# ----------------------------------------------------------------------------- writing


def atomic_save(tensors: dict, metadata: dict, path: str) -> None:
    """safetensors ``save_file`` to a temporary file next to ``path``, fsync, then ``os.replace``."""
    from safetensors.torch import save_file

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".slimops-", suffix=".safetensors.tmp", dir=directory)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_tensors(state: dict) -> tuple[dict, dict]:
    """A dict of tensors and MXTensors -> (safetensors tensors, metadata)."""
    tensors, meta = {}, {VERSION_KEY: FORMAT_VERSION}
    for name, v in state.items():
        if isinstance(v, MXTensor):
            tensors[name + DATA_SUFFIX] = v.data.detach().cpu()
            tensors[name + SCALES_SUFFIX] = v.scales.view(torch.uint8).detach().cpu()
            meta[META_PREFIX + name] = json.dumps({"fmt": v.fmt, "block_size": v.block_size, "axis": v.axis,
                                                   "shape": list(v.shape)})
        elif isinstance(v, torch.Tensor):
            tensors[name] = v.detach().cpu()
        else:
            raise TypeError(f"{name}: expected a tensor or an MXTensor, got {type(v).__name__}")
    return tensors, meta


def quantize_state(state: dict, fmt: str, block_size: int = 32, axis: int = -1,
                   select: Callable[[str, torch.Tensor], bool] = default_select) -> dict:
    """Float weights chosen by ``select`` -> MXTensors in ``fmt`` (MXTensors already there are kept)."""
    out = {}
    for name, v in state.items():
        if isinstance(v, torch.Tensor) and select(name, v):
            out[name] = quantize(v.detach(), fmt, block_size, axis)
        else:
            out[name] = v
    return out


def anchor_state(model: torch.nn.Module) -> dict:
    """A model's state with every layer that holds an ``anchor`` MXTensor (``slimops.nn.MXLinear``)
    giving it as ``<name>.weight`` in place of its packed buffers."""
    state = dict(model.state_dict())
    for name, mod in model.named_modules():
        anchor = getattr(mod, "anchor", None)
        if isinstance(anchor, MXTensor):
            prefix = name + "." if name else ""
            for k in ("anchor_data", "anchor_scales", "_extra_state"):
                state.pop(prefix + k, None)
            state[prefix + "weight"] = anchor
    return state


def save_anchor(model_or_state, path: str, fmt: str = "mxint8", block_size: int = 32, axis: int = -1,
                select: Callable[[str, torch.Tensor], bool] = default_select) -> None:
    """Write an anchor checkpoint. ``model_or_state``: an ``nn.Module`` (its MX layers' anchors and its
    float weights) or a dict of tensors / MXTensors."""
    if isinstance(model_or_state, torch.nn.Module):
        state = anchor_state(model_or_state)
    else:
        state = dict(model_or_state)
    atomic_save(*to_tensors(quantize_state(state, fmt, block_size, axis, select)), path)


# ----------------------------------------------------------------------------- reading


def _open(path: str):
    from safetensors import safe_open

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return safe_open(path, framework="pt")
    except Exception as e:  # safetensors raises SafetensorError (or OSError) on bad headers and sizes
        raise CheckpointError(f"{path}: not a readable safetensors file (corrupt or truncated?): {e}") from None


def read_state(path: str) -> dict:
    """A checkpoint -> dict of tensors and MXTensors, every MX entry checked against its metadata."""
    with _open(path) as f:
        meta = f.metadata() or {}
        keys = set(f.keys())
        try:
            raw = {k: f.get_tensor(k) for k in keys}
        except Exception as e:
            raise CheckpointError(f"{path}: a tensor could not be read (corrupt or truncated?): {e}") from None
    version = meta.get(VERSION_KEY)
    mx_names = [k[len(META_PREFIX):] for k in meta if k.startswith(META_PREFIX)]
    if mx_names and version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: slimops format version {version!r}, this slimops reads {FORMAT_VERSION!r}")
    out = {}
    for name in mx_names:
        try:
            info = json.loads(meta[META_PREFIX + name])
            fmt, bs, axis, shape = info["fmt"], int(info["block_size"]), int(info["axis"]), list(info["shape"])
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: bad metadata for MX weight {name!r}: {e}") from None
        for suffix in (DATA_SUFFIX, SCALES_SUFFIX):
            if name + suffix not in raw:
                raise CheckpointError(f"{path}: MX weight {name!r} has metadata but no tensor {name + suffix!r}")
        data, scales = raw.pop(name + DATA_SUFFIX), raw.pop(name + SCALES_SUFFIX)
        f = get_format(fmt)
        if not 0 <= axis < len(shape):
            raise CheckpointError(f"{path}: MX weight {name!r}: axis {axis} out of range for shape {shape}")
        want_d = shape[:axis] + [f.packed_bytes(shape[axis])] + shape[axis + 1:]
        want_s = shape[:axis] + [-(-shape[axis] // bs)] + shape[axis + 1:]
        if data.dtype != torch.uint8 or list(data.shape) != want_d or list(scales.shape) != want_s:
            raise CheckpointError(f"{path}: MX weight {name!r} ({fmt}, logical shape {shape}): data "
                                  f"{list(data.shape)} {data.dtype} and scales {list(scales.shape)} do not match "
                                  f"the expected {want_d} and {want_s}")
        out[name] = MXTensor(data, scales, f.name, bs, axis, torch.Size(shape))
    for k in sorted(raw):
        if k.endswith(DATA_SUFFIX) or k.endswith(SCALES_SUFFIX):
            raise CheckpointError(f"{path}: tensor {k!r} looks like MX data but has no metadata entry")
        out[k] = raw[k]
    return out


def convert_state(state: dict, fmt: str, rounding: str = "nearest", reports: "dict | None" = None) -> dict:
    """Every MXTensor of a state to ``fmt`` with Slice-and-Scale (a clear error for unsupported pairs);
    with a ``reports`` dict, each weight's ConversionReport is put there under its name."""
    dst = get_format(fmt)
    out = {}
    for name, v in state.items():
        if isinstance(v, MXTensor) and v.fmt != dst.name:
            try:
                if reports is None:
                    out[name] = v.convert(dst.name, rounding=rounding)
                else:
                    out[name], reports[name] = v.convert(dst.name, rounding=rounding, report=True)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        else:
            out[name] = v
    return out


def load_anchor(path: str, fmt: str | None = None, device="cpu", rounding: str = "nearest") -> dict:
    """Read an anchor checkpoint; with ``fmt``, convert every MX weight to it (Slice-and-Scale)."""
    state = read_state(path)
    if fmt is not None:
        state = convert_state(state, fmt, rounding)
    return {k: v.to(device) for k, v in state.items()}


def convert_file(src_path: str, dst_path: str, fmt: str, block_size: int = 32, axis: int = -1,
                 rounding: str = "nearest", select: Callable[[str, torch.Tensor], bool] = default_select) -> dict:
    """``slimops convert``: an anchor -> ``fmt`` by Slice-and-Scale; a float checkpoint (no MX metadata)
    -> an anchor in ``fmt`` (weights chosen by ``select``). Returns a summary (with ``reports``: each
    converted weight's ConversionReport)."""
    get_format(fmt)  # unknown formats fail before anything is read
    state = read_state(src_path)
    n_mx = sum(isinstance(v, MXTensor) for v in state.values())
    reports = {}
    if n_mx:
        out, how = convert_state(state, fmt, rounding, reports), "slice-and-scale"
    else:
        out, how = quantize_state(state, fmt, block_size, axis, select), "quantize"
    tensors, meta = to_tensors(out)
    atomic_save(tensors, meta, dst_path)
    return {"mode": how, "mx_weights": sum(isinstance(v, MXTensor) for v in out.values()),
            "other_tensors": sum(not isinstance(v, MXTensor) for v in out.values()),
            "bytes": os.path.getsize(dst_path), "format": get_format(fmt).name, "reports": reports}
