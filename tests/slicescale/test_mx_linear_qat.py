"""slimops.nn.MXLinear / convert_linears and slimops.qat (multi-format QAT)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import slimops
import slimops.nn as snn
import slimops.qat as qat
from slimops.slicescale import checkpoint as ckpt

from ..mxgemm.helpers import assert_linear_close


def small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 32))


def test_mx_linear_forward_and_formats():
    lin = nn.Linear(64, 48)
    m = snn.MXLinear.from_linear(lin, "mxint8")
    x = torch.randn(5, 64)
    w8 = slimops.mx.quantize(lin.weight.detach(), "mxint8")
    # forward is mx_linear: F.linear on the dequantized weight within its tolerance (tests/mxgemm/helpers.py)
    assert_linear_close(m(x), x, w8.data, w8.scales, "mxint8", 32, lin.bias.detach(), "mxint8")
    m.set_format("mxint4")
    w4 = w8.convert("mxint4")
    assert m.active_fmt == "mxint4" and torch.equal(m.active_data, w4.data)
    assert_linear_close(m(x), x, w4.data, w4.scales, "mxint4", 32, lin.bias.detach(), "mxint4")
    assert m(x.bfloat16()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="one family"):
        m.set_format("mxfp4")


def test_mx_linear_holds_no_high_precision_copy():
    m = snn.MXLinear.from_linear(nn.Linear(256, 128), "mxint8", fmt="mxint4")
    # anchor: 128 x 256 bytes + 128 x 8 scales; active int4: 128 x 128 + 128 x 8; bias 128 fp32
    want = 128 * 256 + 128 * 8 + 128 * 128 + 128 * 8 + 128 * 4
    assert m.held_bytes() == want
    assert [p.dtype for p in m.parameters()] == [torch.float32] and m.bias.numel() == 128
    assert all(b.dtype == torch.uint8 for b in m.buffers())
    m.set_format("mxint8")  # back to the anchor: no second copy
    assert m.held_bytes() == 128 * 256 + 128 * 8 + 128 * 4


def test_mx_linear_activation_fake_quant():
    m = snn.MXLinear.from_linear(nn.Linear(64, 8), "mxfp8", act_fmt="mxfp8")
    x = torch.randn(3, 64)
    xq = slimops.mx.fake_quantize(x, "mxfp8")
    a = m.anchor
    assert_linear_close(m(x), xq, a.data, a.scales, a.fmt, 32, m.bias.detach(), "act_fmt")


def test_convert_linears_state_dict_round_trip():
    model = small_model()
    x = torch.randn(4, 64)
    snn.convert_linears(model, "mxint4", anchor_fmt="mxint8")
    assert all(isinstance(model[i], snn.MXLinear) for i in (0, 2))
    y = model(x)
    sd = model.state_dict()
    assert "0.anchor_data" in sd and "0.active_data" not in sd and "0.weight" not in sd
    fresh = nn.Sequential(snn.MXLinear(64, 96), nn.ReLU(), snn.MXLinear(96, 32))
    fresh.load_state_dict(sd)
    assert fresh[0].active_fmt == "mxint4" and torch.equal(fresh(x), y)
    snn.set_format(fresh, "mxint2")
    assert fresh[2].active_fmt == "mxint2"


def test_load_anchor_into_plain_model(tmp_path):
    model = small_model()
    path = str(tmp_path / "m.safetensors")
    ckpt.save_anchor(model, path, fmt="mxfp8")
    target = small_model(seed=1)
    snn.load_anchor_into(target, path, fmt="mxfp4")
    assert isinstance(target[0], snn.MXLinear) and target[0].active_fmt == "mxfp4_e2m1"
    want = slimops.mx.quantize(model[0].weight.detach(), "mxfp8").convert("mxfp4")
    assert torch.equal(target[0].active_data, want.data)
    assert torch.equal(target[0].bias, model[0].bias)
    # a model of another shape: a clear error
    with pytest.raises(ValueError):
        snn.load_anchor_into(nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 16)), path)


@pytest.mark.parametrize("schedule", ["uniform", "round_robin", {"mxint8": 1, "mxint4": 3}])
def test_qat_schedules_and_ste(schedule):
    model = small_model()
    sched = qat.prepare(model, ["mxint8", "mxint6", "mxint4"], schedule, seed=0)
    seen = []
    for _ in range(12):
        model(torch.randn(2, 64)).sum().backward()
        seen.append(model[0].fmt)
        assert model[2].fmt == model[0].fmt  # one format per step for the whole model
    if schedule == "round_robin":
        assert seen[:3] == ["mxint8", "mxint6", "mxint4"]
    elif isinstance(schedule, dict):
        assert "mxint6" not in seen
    else:
        assert len(set(seen)) > 1
    assert model[0].weight.grad is not None and sched.count == 12


def test_qat_straight_through_gradient_and_per_layer():
    model = small_model()
    qat.prepare(model, ["mxint4"], per_layer=True, activations=True)
    x = torch.randn(3, 64)
    model(x).sum().backward()
    # straight-through: the weight gradient is the gradient w.r.t. the fake-quantized weight
    ref = small_model()
    wq = [slimops.mx.fake_quantize(ref[i].weight.detach(), "mxint4").requires_grad_() for i in (0, 2)]
    h = torch.relu(torch.nn.functional.linear(slimops.mx.fake_quantize(x, "mxint4"), wq[0], ref[0].bias))
    y = torch.nn.functional.linear(slimops.mx.fake_quantize(h, "mxint4"), wq[1], ref[2].bias)
    y.sum().backward()
    assert torch.allclose(model[0].weight.grad, wq[0].grad) and torch.allclose(model[2].weight.grad, wq[1].grad)
    model.eval()  # in training mode every forward draws a format
    qat.set_format(model, None)
    assert torch.allclose(model(x), ref(x))
    qat.strip(model)
    assert type(model[0]) is nn.Linear


def test_export_anchor_and_elastic_load(tmp_path):
    model = small_model()
    qat.prepare(model, ["mxint8", "mxint4"])
    path = str(tmp_path / "anchor.safetensors")
    qat.export_anchor(model, "mxint8", path)
    deployed = small_model(seed=3)
    snn.load_anchor_into(deployed, path, fmt="mxint4")
    qat.set_format(model, "mxint8")
    x = torch.randn(2, 64)
    w4 = slimops.mx.quantize(model[0].weight.detach(), "mxint8").convert("mxint4")
    assert torch.equal(deployed[0].active_data, w4.data)
    with pytest.raises(ValueError, match="schedule"):
        qat.prepare(small_model(), ["mxint8"], "sometimes")
    assert deployed(x).shape == (2, 32)
