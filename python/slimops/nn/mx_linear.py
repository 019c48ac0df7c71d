"""``MXLinear``: a drop-in ``nn.Linear`` whose weight is an MX anchor, switchable to a lower format.

The layer holds the anchor (e.g. MXINT8 or MXFP8) as packed bytes and, when the active format
differs, that format's packed weight made from the anchor by Slice-and-Scale (``mx_convert``),
never a high-precision copy: ``set_format("mxint4")`` costs one packed -> packed pass. Forward is
the fused MX matmul ``torch.ops.slimops.mx_linear`` on the active packed weight (``slimops.mxgemm``:
decoded a tile at a time, never dequantized whole; the result is ``F.linear`` on the dequantized
weight up to the order of the fp32 sums, within the tolerance stated there); optionally the
activations are fake-quantized to ``act_fmt`` first. Gradients reach the input and the bias; the
packed weight is frozen.

The state dict holds ``anchor_data``, ``anchor_scales`` (uint8), ``bias`` and an extra state
(formats, block size, shape); the active weight is rebuilt on load.
"""

from __future__ import annotations

import torch
from torch import nn

from ..mx import MXTensor, fake_quantize, get_format, quantize
from ..slicescale.checkpoint import anchor_state, read_state


class MXLinear(nn.Module):
    """``y = x @ W.T + b`` with ``W`` an MX anchor (blocks along ``in_features``) in the active format."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, anchor_fmt: str = "mxint8",
                 block_size: int = 32, act_fmt: str | None = None, device=None, dtype=torch.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.anchor_fmt = get_format(anchor_fmt).name
        self.block_size = block_size
        self.act_fmt = get_format(act_fmt).name if act_fmt else None
        f = get_format(anchor_fmt)
        self.register_buffer("anchor_data", torch.zeros(out_features, f.packed_bytes(in_features), dtype=torch.uint8,
                                                        device=device))
        self.register_buffer("anchor_scales", torch.zeros(out_features, -(-in_features // block_size),
                                                          dtype=torch.uint8, device=device))
        self.register_buffer("active_data", None, persistent=False)
        self.register_buffer("active_scales", None, persistent=False)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype)) if bias else None
        self.active_fmt = self.anchor_fmt

    # ------------------------------------------------------------------------- construction

    @classmethod
    def from_linear(cls, linear: nn.Linear, anchor_fmt: str = "mxint8", block_size: int = 32,
                    act_fmt: str | None = None, fmt: str | None = None) -> "MXLinear":
        """Quantize an ``nn.Linear``'s weight to the anchor (the only quantization from high precision)."""
        w = linear.weight.detach()
        m = cls(linear.in_features, linear.out_features, linear.bias is not None, anchor_fmt=anchor_fmt,
                block_size=block_size, act_fmt=act_fmt, device=w.device, dtype=w.dtype)
        m.load_anchor(quantize(w, anchor_fmt, block_size, axis=-1))
        if linear.bias is not None:
            m.bias.data.copy_(linear.bias.detach())
        if fmt is not None:
            m.set_format(fmt)
        return m

    def load_anchor(self, t: MXTensor) -> None:
        """Take ``t`` (shape [out, in], blocks along the last axis) as the anchor; resets the active format."""
        if tuple(t.shape) != (self.out_features, self.in_features) or t.axis != 1:
            raise ValueError(f"anchor must be [{self.out_features}, {self.in_features}] blocked along axis 1, got "
                             f"{list(t.shape)} along axis {t.axis}")
        self.anchor_fmt, self.block_size = t.fmt, t.block_size
        self.anchor_data = t.data.to(self.anchor_data.device)
        self.anchor_scales = t.scales.view(torch.uint8).to(self.anchor_data.device)
        self.set_format(self.anchor_fmt)

    # ------------------------------------------------------------------------- formats

    @property
    def anchor(self) -> MXTensor:
        return MXTensor(self.anchor_data, self.anchor_scales, self.anchor_fmt, self.block_size, 1,
                        torch.Size([self.out_features, self.in_features]))

    @property
    def weight_mx(self) -> MXTensor:
        """The active packed weight."""
        if self.active_data is None:
            return self.anchor
        return MXTensor(self.active_data, self.active_scales, self.active_fmt, self.block_size, 1,
                        torch.Size([self.out_features, self.in_features]))

    def set_format(self, fmt: str, rounding: str = "nearest") -> "MXLinear":
        """Switch the runtime format: Slice-and-Scale from the anchor (no re-quantization)."""
        f = get_format(fmt)
        if f.name == self.anchor_fmt:
            self.active_data = self.active_scales = None
        else:
            t = self.anchor.convert(f.name, rounding=rounding)
            self.active_data, self.active_scales = t.data, t.scales
        self.active_fmt = f.name
        return self

    @property
    def weight(self) -> torch.Tensor:
        """The active weight dequantized (a temporary, for inspection; not stored)."""
        return self.weight_mx.dequantize(self.bias.dtype if self.bias is not None else torch.float32)

    def held_bytes(self) -> int:
        """Bytes of every tensor the layer holds (anchor, active packed weight, bias)."""
        return sum(t.numel() * t.element_size() for t in list(self.buffers()) + list(self.parameters()))

    # ------------------------------------------------------------------------- forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            x = x.float()
        if self.act_fmt is not None:
            x = fake_quantize(x, self.act_fmt, self.block_size, -1)
        if self.active_data is None:
            data, scales, fmt = self.anchor_data, self.anchor_scales, self.anchor_fmt
        else:
            data, scales, fmt = self.active_data, self.active_scales, self.active_fmt
        return torch.ops.slimops.mx_linear(x, data, scales, fmt, self.block_size, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"anchor={self.anchor_fmt}, active={self.active_fmt}, block_size={self.block_size}, "
                f"act_fmt={self.act_fmt}")

    # ------------------------------------------------------------------------- state dict

    def get_extra_state(self):
        return {"anchor_fmt": self.anchor_fmt, "active_fmt": self.active_fmt, "block_size": self.block_size,
                "act_fmt": self.act_fmt, "shape": [self.out_features, self.in_features]}

    def set_extra_state(self, state) -> None:
        if list(state["shape"]) != [self.out_features, self.in_features]:
            raise ValueError(f"state is for a {state['shape']} layer, this one is "
                             f"[{self.out_features}, {self.in_features}]")
        self.anchor_fmt, self.block_size, self.act_fmt = state["anchor_fmt"], state["block_size"], state["act_fmt"]
        self.set_format(state["active_fmt"])


# ----------------------------------------------------------------------------- whole models


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p)
    return mod, parts[-1]


def convert_linears(model: nn.Module, fmt: str, *, anchor_fmt: str | None = None, block_size: int = 32,
                    act_fmt: str | None = None, skip=lambda name, module: False) -> nn.Module:
    """Swap every ``nn.Linear`` (whose ``in_features`` is at least one block) for an ``MXLinear``, in place.

    The anchor is ``anchor_fmt`` (default: ``fmt`` itself) and the active format ``fmt``.
    """
    anchor_fmt = anchor_fmt or fmt
    for name, mod in list(model.named_modules()):
        if type(mod) is nn.Linear and mod.in_features >= 1 and not skip(name, mod):
            new = MXLinear.from_linear(mod, anchor_fmt, block_size, act_fmt, fmt)
            if name == "":
                return new
            parent, attr = _parent(model, name)
            setattr(parent, attr, new)
    return model


def set_format(model: nn.Module, fmt: str, rounding: str = "nearest") -> nn.Module:
    """``set_format`` on every MXLinear of the model."""
    for mod in model.modules():
        if isinstance(mod, MXLinear):
            mod.set_format(fmt, rounding)
    return model


def mx_state_dict(model: nn.Module) -> dict:
    """The model's state with every MXLinear's weight as its anchor MXTensor under ``<name>.weight``."""
    return anchor_state(model)


def load_anchor_into(model: nn.Module, path: str, fmt: str | None = None, act_fmt: str | None = None) -> nn.Module:
    """Load an anchor checkpoint (``slimops.slicescale.checkpoint``) into ``model``: every MX weight of a
    Linear makes it an MXLinear with that anchor, switched to ``fmt`` by Slice-and-Scale; the other
    tensors load as usual (strictly: missing or unexpected keys raise)."""
    state = read_state(path)
    rest = {}
    for key, v in state.items():
        if not isinstance(v, MXTensor):
            rest[key] = v
            continue
        name = key[: -len(".weight")] if key.endswith(".weight") else None
        mod = model.get_submodule(name) if name is not None else None
        if not isinstance(mod, (nn.Linear, MXLinear)):
            raise ValueError(f"{key}: an MX weight in the checkpoint, but the model has no Linear {name!r}")
        if isinstance(mod, nn.Linear):
            new = MXLinear(mod.in_features, mod.out_features, mod.bias is not None, anchor_fmt=v.fmt,
                           block_size=v.block_size, act_fmt=act_fmt, device=mod.weight.device, dtype=mod.weight.dtype)
            if name:
                parent, attr = _parent(model, name)
                setattr(parent, attr, new)
            else:
                raise ValueError("the model itself is a Linear: use MXLinear.load_anchor")
            mod = new
        mod.load_anchor(v)
    missing, unexpected = model.load_state_dict(
        {**rest, **{k: v for k, v in model.state_dict().items() if k not in rest and _is_mx_key(k)}}, strict=False)
    missing = [k for k in missing if not _is_mx_key(k)]
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    if fmt is not None:
        set_format(model, fmt)
    return model


def _is_mx_key(k: str) -> bool:
    return k.endswith(("anchor_data", "anchor_scales", "_extra_state"))
