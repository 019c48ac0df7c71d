"""The core shared by every family: import, backend selection per family, info, the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import slimops
from slimops import _backend


# ----------------------------------------------------------------------------- import, CLI, backends



def _run(args, **kw):
    env = dict(os.environ)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, env=env, **kw)


def test_import_does_not_initialise_cuda():
    code = (
        "import torch\n"
        "import slimops\n"
        "assert not torch.cuda.is_initialized(), 'import slimops initialised CUDA'\n"
        "x = torch.randn(4, 70)\n"
        "t = slimops.mx.quantize(x, 'mxfp4', 32, stochastic=True)\n"
        "t.dequantize(torch.bfloat16); slimops.mx.fake_quantize(x, 'mxint8', 16, 0); slimops.info()\n"
        "assert not torch.cuda.is_initialized(), 'a CPU op initialised CUDA'\n"
        "print('clean')\n"
    )
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("clean")


def test_cli_info():
    r = _run(["-m", "slimops", "info"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "slimops" in r.stdout and "native_cpu_built" in r.stdout
    r = _run(["-m", "slimops", "info", "--json"])
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    assert d["slimops"] == slimops.__version__
    assert d["families"]["mx"]["mx_quantize"]["cpu"]["runs"] in ("native", "reference")
    assert "family mx" in _run(["-m", "slimops", "info"]).stdout


def test_info_in_process():
    d = slimops.info()
    assert d["torch"] == torch.__version__
    for op in ("mx_quantize", "mx_dequantize", "mx_fake_quantize"):
        e = d["families"]["mx"][op]["cpu"]
        assert e["declared"] == ["native", "triton"] and set(e["built"]) <= {"native", "triton"}


def test_backend_names(backend_reset, monkeypatch):
    for bad in ("cuda", "cpu", "", "Native", "ref"):
        with pytest.raises(ValueError, match=r"backend must be one of .*'auto', 'reference', 'native', 'triton'"):
            with slimops.use_backend(bad):
                pass
        with pytest.raises(ValueError, match="backend must be one of"):
            slimops.set_backend(bad)
    assert slimops.current_backend() == os.environ.get("SLIMOPS_BACKEND", "auto")
    with slimops.use_backend("reference"):
        assert slimops.current_backend() == "reference"
        with slimops.use_backend("auto"):
            assert slimops.current_backend() == "auto"
        assert slimops.current_backend() == "reference"
    with pytest.raises(RuntimeError, match="boom"):  # the setting is restored after an exception
        with slimops.use_backend("reference"):
            raise RuntimeError("boom")
    assert slimops.current_backend() == os.environ.get("SLIMOPS_BACKEND", "auto")
    slimops.set_backend("reference")
    assert slimops.current_backend() == "reference"
    slimops._backend._default.clear()
    monkeypatch.setenv("SLIMOPS_BACKEND", "bogus")
    with pytest.raises(ValueError, match="'bogus'"):
        slimops.current_backend()



def test_missing_native_module_falls_back_to_reference(monkeypatch, backend_reset):
    """A CPU-only install without slimops._C (SLIMOPS_SKIP_NATIVE=1) still runs every op, on the reference."""
    from slimops import _backend

    real = _backend.native_module
    monkeypatch.setattr(_backend, "native_module", lambda name: None if name == "_C" else real(name))
    assert _backend.resolve("mx", "mx_quantize", "cpu") == "reference"
    assert slimops.info()["families"]["mx"]["mx_quantize"]["cpu"]["runs"] == "reference"
    x = torch.randn(3, 40)
    with slimops.use_backend("reference"):
        want = slimops.mx.quantize(x, "mxfp6")
    got = slimops.mx.quantize(x, "mxfp6")
    assert torch.equal(got.data, want.data) and torch.equal(got.scales, want.scales)
    with slimops.use_backend("native"), pytest.raises(RuntimeError, match="slimops._C"):
        slimops.mx.quantize(x, "mxfp6")


# ----------------------------------------------------------------------------- per-family backend table


def test_register_family_and_resolve(monkeypatch, backend_reset):
    monkeypatch.setitem(_backend._FAMILIES, "demo", {})
    _backend.register_family("demo", {
        "demo_op": {"cpu": ("native",), "cuda": {torch.bfloat16: ("native", "triton"), None: ("triton",)}},
        "ref_only": {},
    })
    assert _backend.declared("demo", "demo_op", "cuda", torch.bfloat16) == ("native", "triton")
    assert _backend.declared("demo", "demo_op", "cuda", torch.float32) == ("triton",)
    assert _backend.declared("demo", "ref_only", "cpu") == ()
    assert _backend.resolve("demo", "ref_only", "cpu") == "reference"
    with slimops.use_backend("reference"):
        assert _backend.resolve("demo", "demo_op", "cpu") == "reference"
    want_cpu = "native" if _backend.native_module("_C") is not None else "reference"
    assert _backend.resolve("demo", "demo_op", "cpu") == want_cpu
    with slimops.use_backend("triton"), pytest.raises(RuntimeError, match="demo has no triton implementation"):
        _backend.resolve("demo", "demo_op", "cpu")
    with pytest.raises(ValueError, match="unknown op demo/nope"):
        _backend.resolve("demo", "nope", "cpu")
    with pytest.raises(ValueError, match="unknown implementations"):
        _backend.register_family("demo", {"x": {"cpu": ("cuda",)}})


def test_auto_never_picks_the_triton_interpreter(monkeypatch, backend_reset):
    monkeypatch.setattr(_backend, "native_module", lambda name: None)
    assert _backend.resolve("mx", "mx_quantize", "cpu") == "reference"
