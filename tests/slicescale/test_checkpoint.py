"""Elastic checkpoints (safetensors), `slimops convert`, gpt-oss and torchao interop."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import slimops
from slimops.__main__ import main as cli
from slimops.mx import MXTensor
from slimops.slicescale import checkpoint as ckpt
from slimops.slicescale import interop


def float_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"layer0.weight": torch.randn(48, 64, generator=g), "layer0.bias": torch.randn(48, generator=g),
            "layer1.weight": torch.randn(16, 48, generator=g).to(torch.bfloat16), "norm.weight": torch.ones(16)}


def test_save_load_anchor_layout(tmp_path):
    path = str(tmp_path / "a.safetensors")
    ckpt.save_anchor(float_state(), path, fmt="mxint8")
    with safe_open(path, "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        assert f.get_tensor("layer0.weight.mx_data").dtype == torch.uint8
    assert keys == {"layer0.weight.mx_data", "layer0.weight.mx_scales", "layer1.weight.mx_data",
                    "layer1.weight.mx_scales", "layer0.bias", "norm.weight"}
    assert meta["slimops.format_version"] == "1"
    assert json.loads(meta["slimops.mx.layer0.weight"]) == {"fmt": "mxint8", "block_size": 32, "axis": 1,
                                                            "shape": [48, 64]}
    state = ckpt.load_anchor(path)
    want = slimops.mx.quantize(float_state()["layer0.weight"], "mxint8")
    assert isinstance(state["layer0.weight"], MXTensor)
    assert torch.equal(state["layer0.weight"].data, want.data) and torch.equal(state["layer0.weight"].scales,
                                                                               want.scales)
    assert torch.equal(state["layer0.bias"], float_state()["layer0.bias"])
    low = ckpt.load_anchor(path, fmt="mxint4")["layer1.weight"]
    ref = slimops.mx.quantize(float_state()["layer1.weight"], "mxint8").convert("mxint4")
    assert low.fmt == "mxint4" and torch.equal(low.data, ref.data) and torch.equal(low.scales, ref.scales)


def test_cli_convert_anchor_and_float(tmp_path, capsys):
    src = str(tmp_path / "float.safetensors")
    save_file(float_state(), src)
    anchor, low = str(tmp_path / "anchor.safetensors"), str(tmp_path / "low.safetensors")
    assert cli(["convert", src, "--to", "mxfp8", "-o", anchor]) == 0  # float -> anchor
    assert "quantize" in capsys.readouterr().out
    assert cli(["convert", anchor, "--to", "mxfp4", "-o", low]) == 0  # anchor -> lower format
    assert "slice-and-scale" in capsys.readouterr().out
    got = ckpt.load_anchor(low)["layer0.weight"]
    want = slimops.mx.quantize(float_state()["layer0.weight"], "mxfp8").convert("mxfp4")
    assert got.fmt == "mxfp4_e2m1" and torch.equal(got.data, want.data) and torch.equal(got.scales, want.scales)
    assert os.path.getsize(low) < os.path.getsize(anchor)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".slimops-")]  # no temporary left


@pytest.mark.parametrize("case,msg", [
    ("unknown", "unknown MX format"), ("truncated", "corrupt or truncated"), ("garbage", "corrupt or truncated"),
    ("shape", "do not match"), ("family", "one family"), ("missing", "no such file"),
])
def test_cli_errors(tmp_path, capsys, case, msg):
    path, out = str(tmp_path / "in.safetensors"), str(tmp_path / "out.safetensors")
    ckpt.save_anchor(float_state(), path, fmt="mxint8")
    fmt = "mxint4"
    if case == "unknown":
        fmt = "mxint3"
    elif case == "truncated":
        raw = open(path, "rb").read()
        open(path, "wb").write(raw[: len(raw) // 2])
    elif case == "garbage":
        open(path, "wb").write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    elif case == "shape":
        state = ckpt.read_state(path)
        tensors, meta = ckpt.to_tensors(state)
        tensors["layer0.weight.mx_data"] = tensors["layer0.weight.mx_data"][:, :10].contiguous()
        save_file(tensors, path, metadata=meta)
    elif case == "family":
        fmt = "mxfp4"
    elif case == "missing":
        path = str(tmp_path / "nope.safetensors")
    open(out, "wb").write(b"previous")  # an existing target survives a failed conversion
    assert cli(["convert", path, "--to", fmt, "-o", out]) == 2
    assert msg in capsys.readouterr().err
    assert open(out, "rb").read() == b"previous"


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = str(tmp_path / "t.safetensors")
    open(target, "wb").write(b"old")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_anchor(float_state(), target)
    assert open(target, "rb").read() == b"old" and os.listdir(tmp_path) == ["t.safetensors"]


# ----------------------------------------------------------------------------- gpt-oss


def test_gpt_oss_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (2, 6, 4, 16), dtype=torch.uint8, generator=g)  # [E, N, K/32, 16]
    scales = torch.randint(100, 140, (2, 6, 4), dtype=torch.uint8, generator=g)
    state = {"mlp1_weight_blocks": blocks, "mlp1_weight_scales": scales, "norm.scale": torch.ones(4)}
    imported = interop.import_gpt_oss(state)
    t = imported["mlp1_weight"]
    assert t.fmt == "mxfp4_e2m1" and t.shape == (2, 6, 128) and set(imported) == {"mlp1_weight", "norm.scale"}
    # element 0 in the low nibble: the values are gpt-oss's FP4_VALUES lookup times 2**(scale - 127)
    fp4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])
    idx = torch.stack([blocks & 0xF, blocks >> 4], dim=-1).reshape(2, 6, 4, 32).long()
    want = (fp4[idx] * torch.exp2(scales.float() - 127)[..., None]).reshape(2, 6, 128)
    assert torch.equal(t.dequantize(), want)
    back = interop.export_gpt_oss(imported)
    assert torch.equal(back["mlp1_weight_blocks"], blocks) and torch.equal(back["mlp1_weight_scales"], scales)
    # an MXFP8 anchor converts to the gpt-oss layout through Slice-and-Scale
    a = slimops.mx.quantize(torch.randn(8, 64, generator=g), "mxfp8").convert("mxfp4")
    b, s = interop.to_gpt_oss(a)
    assert b.shape == (8, 2, 16) and s.shape == (8, 2)
    with pytest.raises(ValueError, match="blocks of 32"):
        interop.to_gpt_oss(slimops.mx.quantize(torch.randn(8, 64), "mxfp4", block_size=16))


# ----------------------------------------------------------------------------- torchao


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4_e2m1"])
def test_torchao_round_trip(fmt):
    pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")
    from torchao.prototype.mx_formats.mx_tensor import MXTensor as TorchaoMX

    x = torch.randn(6, 96, generator=torch.Generator().manual_seed(1))
    ours = slimops.mx.quantize(x, fmt)
    tao = interop.to_torchao(ours)
    assert torch.equal(tao.dequantize(torch.float32), ours.dequantize())
    back = interop.from_torchao(tao)
    assert torch.equal(back.data, ours.data) and torch.equal(back.scales, ours.scales) and back.fmt == ours.fmt
    theirs = interop.from_torchao(TorchaoMX.to_mx(x, interop._torchao_dtype(fmt), 32))  # made by torchao
    assert torch.equal(theirs.data, ours.data) and torch.equal(theirs.scales, ours.scales)
    with pytest.raises(ValueError, match="no mxint8"):
        interop.to_torchao(slimops.mx.quantize(x, "mxint8"))
