"""Multi-format quantization-aware training (MF-QAT), re-exported as ``slimops.qat``.

>>> qat = slimops.qat.prepare(model, formats=["mxint8", "mxint6", "mxint4"], schedule="uniform")
>>> for step in ...: loss = f(model(x)); loss.backward(); opt.step()    # one format drawn per step
>>> slimops.qat.export_anchor(model, "mxint8", "anchor.safetensors")    # then any lower format at load

:func:`prepare` replaces every ``nn.Linear`` with a :class:`QATLinear` (same parameters) whose
forward fake-quantizes the weight (and, with ``activations=True``, the input) to the layer's
current format, with a straight-through gradient (``mx_fake_quantize``). A forward pre-hook on
the model draws the format at every training-mode forward: one for the whole model (default) or
one per layer (``per_layer=True``), from ``schedule``:

* ``"uniform"``: uniformly at random (a seeded generator: runs are reproducible);
* ``"round_robin"``: the formats in turn;
* ``{fmt: weight}``: at random with these relative weights.

In eval mode the format stays where :func:`set_format` (or the last draw) put it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..mx import fake_quantize, get_format


class QATLinear(nn.Linear):
    """``nn.Linear`` with the weight (and optionally the input) fake-quantized to ``self.fmt``."""

    fmt: str | None = None
    act: bool = False
    qat_block_size: int = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fmt is None:
            return super().forward(x)
        w = fake_quantize(self.weight, self.fmt, self.qat_block_size, -1)
        if self.act:
            x = fake_quantize(x, self.fmt, self.qat_block_size, -1)
        return F.linear(x, w, self.bias)


class Scheduler:
    """Draws formats: ``next()`` returns one format name."""

    def __init__(self, formats, schedule="uniform", seed: int = 0):
        self.formats = [get_format(f).name for f in formats]
        if not self.formats:
            raise ValueError("formats must name at least one MX format")
        if isinstance(schedule, dict):
            w = {get_format(k).name: float(v) for k, v in schedule.items()}
            unknown = set(w) - set(self.formats)
            if unknown:
                raise ValueError(f"schedule weights for formats not in `formats`: {sorted(unknown)}")
            self.weights = torch.tensor([w.get(f, 0.0) for f in self.formats], dtype=torch.float64)
            if (self.weights < 0).any() or self.weights.sum() <= 0:
                raise ValueError("schedule weights must be >= 0 with a positive sum")
        elif schedule in ("uniform", "round_robin"):
            self.weights = torch.ones(len(self.formats), dtype=torch.float64)
        else:
            raise ValueError(f"schedule must be 'uniform', 'round_robin' or a {{fmt: weight}} dict, got {schedule!r}")
        self.round_robin = schedule == "round_robin"
        self.gen = torch.Generator().manual_seed(seed)
        self.count = 0

    def next(self) -> str:
        if self.round_robin:
            f = self.formats[self.count % len(self.formats)]
        else:
            f = self.formats[int(torch.multinomial(self.weights, 1, generator=self.gen))]
        self.count += 1
        return f


def qat_layers(model: nn.Module) -> list[QATLinear]:
    return [m for m in model.modules() if isinstance(m, QATLinear)]


def prepare(model: nn.Module, formats, schedule="uniform", *, per_layer: bool = False, activations: bool = False,
            block_size: int = 32, seed: int = 0, skip=lambda name, module: False) -> Scheduler:
    """Make ``model`` (in place) train with multi-format fake quantization; returns the scheduler.

    Linear layers whose ``in_features`` is not a multiple of ``block_size`` still work (the last
    block is partial). ``skip(name, module)`` keeps chosen Linears in full precision.
    """
    sched = Scheduler(formats, schedule, seed)
    for name, mod in list(model.named_modules()):
        if type(mod) is nn.Linear and not skip(name, mod):
            mod.__class__ = QATLinear  # same parameters, same state dict
            mod.fmt, mod.act, mod.qat_block_size = sched.formats[0], activations, block_size

    def draw(module, args):
        if not module.training:
            return
        layers = qat_layers(module)
        if per_layer:
            for layer in layers:
                layer.fmt = sched.next()
        else:
            f = sched.next()
            for layer in layers:
                layer.fmt = f

    if getattr(model, "_slimops_qat_hook", None) is not None:
        model._slimops_qat_hook.remove()
    model._slimops_qat_hook = model.register_forward_pre_hook(draw)
    model._slimops_qat_scheduler = sched
    return sched


def set_format(model: nn.Module, fmt: str | None) -> nn.Module:
    """Fix every QAT layer's format (``None``: full precision), e.g. for evaluation."""
    name = get_format(fmt).name if fmt is not None else None
    for layer in qat_layers(model):
        layer.fmt = name
    return model


def export_anchor(model: nn.Module, fmt: str, path: str, block_size: int | None = None) -> dict:
    """Write the anchor checkpoint of a QAT model: every QAT layer's weight quantized to ``fmt``,
    the rest (biases, norms, embeddings) as they are. Returns the state written."""
    from .checkpoint import atomic_save, to_tensors
    from ..mx import quantize

    state = dict(model.state_dict())
    for name, mod in model.named_modules():
        if isinstance(mod, QATLinear):
            key = (name + "." if name else "") + "weight"
            state[key] = quantize(mod.weight.detach(), fmt, block_size or mod.qat_block_size, -1)
    atomic_save(*to_tensors(state), path)
    return state


def strip(model: nn.Module) -> nn.Module:
    """Undo :func:`prepare`: QAT layers back to plain ``nn.Linear``, the hook removed."""
    for mod in qat_layers(model):
        mod.__class__ = nn.Linear
    hook = getattr(model, "_slimops_qat_hook", None)
    if hook is not None:
        hook.remove()
        model._slimops_qat_hook = None
    return model
