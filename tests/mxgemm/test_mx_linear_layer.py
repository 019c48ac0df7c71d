"""slimops.nn.MXLinear on mx_linear: every layer of the Slice-and-Scale experiment's character LM
(``CharLM`` in bench/slicescale/experiment.py, random weights) agrees with the previous forward
(dequantize, then F.linear in x's dtype) within mx_linear's tolerance, in every format; forward
dequantizes nothing; gradients reach the input and the bias, not the packed weight."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
import torch
from torch import nn

import slimops.nn as snn
from slimops.mx.formats import FORMATS
from slimops.testing import OpLog

from .helpers import assert_linear_close

ROOT = pathlib.Path(__file__).resolve().parents[2]


def char_lm(vocab: int = 40, seed: int = 0) -> nn.Module:
    spec = importlib.util.spec_from_file_location("slicescale_experiment", ROOT / "bench/slicescale/experiment.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(seed)
    return mod.CharLM(vocab, ctx=32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_char_lm_every_format(dtype, backend_reset):
    idx = torch.randint(0, 40, (3, 32), generator=torch.Generator().manual_seed(1))
    for fmt in FORMATS:
        model = char_lm().to(dtype)
        anchor = fmt if fmt.startswith("mxfp8") else "mxint8" if fmt.startswith("mxint") else "mxfp8_e4m3"
        snn.convert_linears(model, fmt, anchor_fmt=anchor)
        layers = [m for m in model.modules() if isinstance(m, snn.MXLinear)]
        assert len(layers) == 9 and all(m.active_fmt == fmt for m in layers)
        seen = []

        def check(mod, inputs, out, fmt=fmt):
            w = mod.weight_mx
            assert_linear_close(out, inputs[0], w.data, w.scales, w.fmt, w.block_size, mod.bias.detach(),
                                f"{fmt} {dtype} {mod.in_features}->{mod.out_features}")
            seen.append(mod)

        hooks = [m.register_forward_hook(check) for m in layers]
        with torch.no_grad():
            logits = model(idx)
        for h in hooks:
            h.remove()
        assert len(seen) == len(layers) and logits.dtype == dtype and torch.isfinite(logits).all()


def test_forward_dequantizes_nothing(backend_reset):
    m = snn.MXLinear.from_linear(nn.Linear(128, 64), "mxint8", fmt="mxint4")
    x = torch.randn(4, 128)
    with OpLog() as log, torch.no_grad():
        m(x)
    assert "slimops.mx_linear" in log.ops and not any("dequantize" in op for op in log.ops), log.ops
    m.act_fmt = "mxfp8_e4m3"
    with OpLog() as log, torch.no_grad():
        m(x)
    assert "slimops.mx_fake_quantize" in log.ops and not any("dequantize" in op for op in log.ops), log.ops


def test_gradients_reach_input_and_bias(backend_reset):
    """An adapter on a frozen MX base: the input and the bias get gradients, the packed weight none."""
    m = snn.MXLinear.from_linear(nn.Linear(96, 48), "mxfp8_e4m3", fmt="mxfp4")
    lora_a, lora_b = nn.Linear(96, 4, bias=False), nn.Linear(4, 48, bias=False)
    x = torch.randn(5, 96, requires_grad=True)
    y = m(x) + lora_b(lora_a(x))
    y.square().sum().backward()
    w = m.weight_mx.dequantize(torch.float32)
    g = 2 * y.detach()
    torch.testing.assert_close(m.bias.grad, g.sum(0))
    torch.testing.assert_close(x.grad, g @ w + (g @ lora_b.weight) @ lora_a.weight, rtol=1e-4, atol=1e-4)
    assert lora_a.weight.grad is not None and all(not b.requires_grad for b in m.buffers())
