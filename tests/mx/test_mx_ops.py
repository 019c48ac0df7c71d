"""The torch.ops.slimops MX ops as PyTorch ops: opcheck, torch.compile, autograd, argument
checks and their messages, import hygiene, backend selection and the MXTensor API."""

from __future__ import annotations

import sys

import pytest
import torch

import slimops
from slimops._backend import native_module
from slimops.mx.formats import FORMATS

from slimops.testing import DEVICES, assert_bits_equal, cpu_backends, device_backends, gpu_backends

OPS = torch.ops.slimops


# (shape, dtype, fmt, block_size, axis, scale_mode, stochastic, seed): small odd shapes
CASES = [
    ((3, 37), torch.float32, "mxfp4_e2m1", 32, -1, "floor", False, 0),
    ((5, 7, 9), torch.bfloat16, "mxfp6_e3m2", 16, 1, "rceil", True, 3),
    ((2, 65), torch.float16, "mxint2", 64, 0, "floor", False, 0),
    ((1, 3, 17), torch.float32, "mxfp8_e5m2", 16, -1, "rceil", False, 0),
]
CASE_IDS = [f"{c[2]}-{'x'.join(map(str, c[0]))}-ax{c[4]}" for c in CASES]


def make_x(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * torch.exp2(torch.randn(shape, generator=g) * 3)).to(dtype).to(device)


# ----------------------------------------------------------------------------- opcheck


@pytest.mark.parametrize("device,backend", device_backends())
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_opcheck(device, backend, case, backend_reset):
    shape, dtype, fmt, bs, axis, mode, sr, seed = case
    x = make_x(shape, dtype, device)
    with slimops.use_backend(backend):
        torch.library.opcheck(OPS.mx_quantize.default, (x, fmt, bs, axis, mode, sr, seed))
        data, scales = OPS.mx_quantize(x, fmt, bs, axis, mode, sr, seed)
        for out_dtype in (torch.float32, torch.bfloat16):
            torch.library.opcheck(OPS.mx_dequantize.default,
                                  (data, scales, fmt, bs, axis, shape[axis], out_dtype))
        torch.library.opcheck(OPS.mx_fake_quantize.default,
                              (x.clone().requires_grad_(), fmt, bs, axis, mode, sr, seed))


@pytest.mark.parametrize("device,backend", device_backends())
def test_opcheck_non_contiguous(device, backend, backend_reset):
    """A transposed input: every kernel returns contiguous outputs, and so must the fake kernels."""
    x = make_x((40, 70), torch.float32, device).t()
    with slimops.use_backend(backend):
        torch.library.opcheck(OPS.mx_quantize.default, (x, "mxfp4", 32, -1, "floor", False, 0))
        torch.library.opcheck(OPS.mx_fake_quantize.default, (x.requires_grad_(), "mxfp8", 32, 0, "floor", False, 0))


# ----------------------------------------------------------------------------- torch.compile


def _pipeline(x):
    t = slimops.mx.quantize(x, "mxfp6", 16, 1, scale_mode="rceil", stochastic=True, seed=5)
    u = slimops.mx.quantize(x, "mxfp8_e4m3", 32)
    return (t.data, t.scales, slimops.mx.dequantize(t, torch.bfloat16), u.dequantize(torch.float32),
            slimops.mx.fake_quantize(x, "mxint4", 32, -1), slimops.mx.fake_quantize(x, "mxfp4", 64, 0))


@pytest.mark.parametrize("device,backend", device_backends())
def test_compile_fullgraph_matches_eager(device, backend, backend_reset):
    x = make_x((6, 70), torch.float32, device, seed=1)
    x[0, :3] = torch.tensor([float("nan"), 0.0, -0.0])
    with slimops.use_backend(backend):
        eager = _pipeline(x)
        compiled = torch.compile(_pipeline, fullgraph=True)(x)
    assert len(eager) == len(compiled)
    for i, (e, c) in enumerate(zip(eager, compiled)):
        assert_bits_equal(c, e, f"output {i}")


def test_compile_backward_straight_through():
    def loss(x, g):
        return (slimops.mx.fake_quantize(x, "mxfp4", 32) * g).sum()

    x = make_x((4, 40), torch.float32, "cpu").requires_grad_()
    g = torch.randn(4, 40)
    torch.compile(loss, fullgraph=True, backend="aot_eager")(x, g).backward()
    assert_bits_equal(x.grad, g, "compiled grad")


# ----------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("fmt", ["mxfp8", "mxfp4", "mxint2"])
def test_fake_quantize_gradient_is_straight_through(device, dtype, fmt):
    x = make_x((3, 5, 33), dtype, device)
    x[0, 0, 0] = float("nan")  # a NaN block does not stop the gradient either
    x.requires_grad_()
    y = slimops.mx.fake_quantize(x, fmt, 16, axis=1, stochastic=True, seed=2)
    assert y.requires_grad and y.dtype == dtype and y.shape == x.shape
    g = torch.randn(x.shape, dtype=dtype, device=device)
    y.backward(g)
    assert_bits_equal(x.grad, g, "grad")
    # and through autograd.grad of a scalar loss: d sum(fq(x)) / dx = 1
    (gx,) = torch.autograd.grad(slimops.mx.fake_quantize(x, fmt).sum(), x)
    assert_bits_equal(gx, torch.ones_like(x), "grad of sum")


def test_quantize_outputs_are_not_differentiable():
    x = torch.randn(2, 32, requires_grad=True)
    t = slimops.mx.quantize(x, "mxfp8")
    assert t.data.dtype == torch.uint8 and not t.data.requires_grad and not t.scales.requires_grad


# ----------------------------------------------------------------------------- argument checks


def _quantize_op(x, fmt="mxfp8_e4m3", bs=32, axis=-1, mode="floor"):
    return OPS.mx_quantize(x, fmt, bs, axis, mode, False, 0)


def _fake_op(x, fmt="mxfp8_e4m3", bs=32, axis=-1, mode="floor"):
    return OPS.mx_fake_quantize(x, fmt, bs, axis, mode, False, 0)


def _quantize_api(x, fmt="mxfp8_e4m3", bs=32, axis=-1, mode="floor"):
    return slimops.mx.quantize(x, fmt, bs, axis, scale_mode=mode)


def _fake_api(x, fmt="mxfp8_e4m3", bs=32, axis=-1, mode="floor"):
    return slimops.mx.fake_quantize(x, fmt, bs, axis, scale_mode=mode)


QUANTIZERS = [_quantize_op, _fake_op, _quantize_api, _fake_api]
ERR_DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])  # meta: the fake kernels


@pytest.mark.parametrize("device", ERR_DEVICES)
@pytest.mark.parametrize("fn", QUANTIZERS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("backend", cpu_backends())
def test_bad_quantize_arguments(fn, device, backend, backend_reset):
    x = torch.randn(3, 40, device=device)
    with slimops.use_backend(backend):
        for bad in (torch.int32, torch.int64, torch.uint8, torch.bool, torch.float64, torch.complex64):
            with pytest.raises(TypeError, match=r"\bx\b.*float32, bfloat16 or float16.*" + str(bad).split(".")[1]):
                fn(torch.ones(3, 40, dtype=bad, device=device))
        with pytest.raises(ValueError, match="fmt") as info:
            fn(x, "mxfp5")
        for name in list(FORMATS) + ["mxfp8", "mxfp6", "mxfp4"]:
            assert name in str(info.value)
        for bs in (0, 8, 24, 33, 128, -32):
            with pytest.raises(ValueError, match=r"block_size.*\(16, 32, 64\)"):
                fn(x, bs=bs)
        for axis in (2, -3, 10):
            with pytest.raises(ValueError, match=rf"axis={axis} is out of range for a 2-d tensor"):
                fn(x, axis=axis)
        with pytest.raises(ValueError, match="scale_mode"):
            fn(x, mode="ceil")
        with pytest.raises(ValueError, match=r"axis.*0-d"):
            fn(torch.tensor(1.0, device=device), axis=0)
        with pytest.raises(ValueError, match=r"axis.*0-d"):
            fn(torch.tensor(1.0, device=device))


def test_format_names():
    assert slimops.mx.get_format("MXFP8").name == "mxfp8_e4m3"
    assert slimops.mx.get_format("mxfp6").name == "mxfp6_e2m3"
    assert slimops.mx.get_format("mxfp4").name == "mxfp4_e2m1"
    with pytest.raises(TypeError, match="fmt"):
        slimops.mx.get_format(8)
    t = slimops.mx.quantize(torch.randn(2, 32), "MxFp4")
    assert t.fmt == "mxfp4_e2m1"


@pytest.mark.parametrize("device", ERR_DEVICES)
@pytest.mark.parametrize("backend", cpu_backends())
def test_bad_dequantize_arguments(device, backend, backend_reset):
    x = torch.randn(3, 37)
    t = slimops.mx.quantize(x, "mxfp6")  # data (3, 28), scales (3, 2)
    data, scales = t.data.to(device), t.scales.to(device)
    fmt, f32 = "mxfp6_e2m3", torch.float32

    def deq(d=data, s=scales, fmt=fmt, bs=32, axis=1, length=37, dtype=f32):
        return OPS.mx_dequantize(d, s, fmt, bs, axis, length, dtype)

    with slimops.use_backend(backend):
        assert deq().shape == (3, 37)
        assert deq(s=scales.view(torch.float8_e8m0fnu)).shape == (3, 37)  # E8M0 scales accepted
        with pytest.raises(ValueError, match=r"data has shape \[3, 27\], expected \[3, 28\]"):
            deq(d=data[:, :27])
        with pytest.raises(ValueError, match=r"data has shape \[3, 28\], expected \[3, 29\]"):
            deq(length=38)
        with pytest.raises(ValueError, match=r"scales has shape \[3, 1\], expected \[3, 2\]"):
            deq(s=scales[:, :1])
        with pytest.raises(ValueError, match=r"scales has shape \[2, 2\]"):
            deq(s=scales[:2])
        with pytest.raises(ValueError, match="scales must have as many dimensions as data"):
            deq(s=scales.reshape(-1))
        with pytest.raises(TypeError, match=r"\bdata\b must be uint8"):
            deq(d=data.to(torch.int8))
        with pytest.raises(TypeError, match=r"\bdata\b must be uint8"):
            deq(d=data.float())
        with pytest.raises(TypeError, match=r"\bscales\b must be uint8 or float8_e8m0fnu"):
            deq(s=scales.to(torch.int32))
        with pytest.raises(TypeError, match=r"\bscales\b must be uint8 or float8_e8m0fnu"):
            deq(s=scales.float())
        with pytest.raises(TypeError, match=r"\bdtype\b must be float32, bfloat16 or float16"):
            deq(dtype=torch.int32)
        with pytest.raises(TypeError, match=r"\bdtype\b"):
            deq(dtype=torch.float64)
        with pytest.raises(ValueError, match="fmt"):
            deq(fmt="fp8")
        with pytest.raises(ValueError, match="block_size"):
            deq(bs=48)
        with pytest.raises(ValueError, match=r"axis=2 is out of range"):
            deq(axis=2)
        with pytest.raises(ValueError, match="length"):
            deq(length=-1)
        u8 = torch.tensor(1, dtype=torch.uint8, device=device)
        with pytest.raises(ValueError, match=r"axis.*0-d"):
            deq(d=u8, s=u8, axis=0, length=1)
        # data and scales on different devices ('meta' stands in for a second device)
        other = "meta" if device != "meta" else "cpu"
        for d, s in ((data, torch.empty_like(scales, device=other)), (torch.empty_like(data, device=other), scales)):
            with pytest.raises(ValueError, match=r"data and scales must be on the same device.*data on .* scales on"):
                deq(d=d, s=s)
        with pytest.raises(TypeError, match=r"\bt\b must be an MXTensor"):
            slimops.mx.dequantize(x)


# ----------------------------------------------------------------------------- MXTensor


@pytest.mark.parametrize("device", DEVICES)
def test_mxtensor_api(device):
    x = make_x((4, 64), torch.float32, device)
    t = slimops.mx.quantize(x, "mxfp4")
    assert isinstance(t, slimops.mx.MXTensor)
    assert t.fmt == "mxfp4_e2m1" and t.format is FORMATS["mxfp4_e2m1"]
    assert t.block_size == 32 and t.axis == 1 and t.shape == x.shape and t.device == x.device
    assert t.data.shape == (4, 32) and t.data.dtype == torch.uint8
    assert t.scales.shape == (4, 2) and t.scales.dtype == torch.uint8
    assert t.nbytes == 4 * 32 + 4 * 2
    e = t.scales_e8m0
    assert e.dtype == torch.float8_e8m0fnu and e.shape == t.scales.shape
    assert torch.equal(e.view(torch.uint8), t.scales)
    assert torch.equal(e.float(), torch.exp2(t.scales.float() - 127))
    # dequantize: default fp32, other dtypes, same as the functional form
    y = t.dequantize()
    assert y.dtype == torch.float32 and y.shape == x.shape and y.device == x.device
    assert_bits_equal(y, slimops.mx.dequantize(t), "dequantize")
    assert_bits_equal(t.dequantize(torch.bfloat16), y.to(torch.bfloat16), "bf16")
    assert_bits_equal(slimops.mx.fake_quantize(x, "mxfp4"), y, "fake_quantize")
    assert t.swizzled_scales().numel() == 128 * 4
    # to(): another device and back, fields kept
    m = t.to("meta")
    assert m.device.type == "meta" and m.scales.device.type == "meta"
    assert (m.fmt, m.block_size, m.axis, m.shape) == (t.fmt, t.block_size, t.axis, t.shape)
    ym = m.dequantize(torch.float16)
    assert ym.device.type == "meta" and ym.shape == x.shape and ym.dtype == torch.float16
    back = t.to("cpu")
    assert torch.equal(back.data, t.data.cpu()) and torch.equal(back.scales, t.scales.cpu())
    assert_bits_equal(back.dequantize(), y.cpu(), "after to(cpu)")
    for other in DEVICES:
        assert_bits_equal(t.to(other).dequantize().cpu(), y.cpu(), f"after to({other})")


@pytest.mark.parametrize("fmt,shape,axis,data_shape,scales_shape,nbytes", [
    ("mxfp8", (3, 40), -1, (3, 40), (3, 2), 126),
    ("mxfp6_e3m2", (64, 3), 0, (48, 3), (2, 3), 150),
    ("mxfp6", (2, 5), 1, (2, 4), (2, 1), 10),
    ("mxint2", (2, 3, 33), 2, (2, 3, 9), (2, 3, 2), 66),
    ("mxint4", (7, 2), 0, (4, 2), (1, 2), 10),
])
def test_mxtensor_storage(fmt, shape, axis, data_shape, scales_shape, nbytes):
    t = slimops.mx.quantize(torch.randn(shape), fmt, 32, axis)
    assert tuple(t.data.shape) == data_shape and tuple(t.scales.shape) == scales_shape
    assert t.nbytes == nbytes
    assert t.dequantize().shape == shape


def test_meta_quantize_shapes():
    t = slimops.mx.quantize(torch.empty(5, 7, 70, device="meta"), "mxfp6", 16, 2)
    assert t.data.shape == (5, 7, 53) and t.scales.shape == (5, 7, 5) and t.data.device.type == "meta"
    y = slimops.mx.fake_quantize(torch.empty(3, 9, device="meta", dtype=torch.bfloat16), "mxint4", 16, 0)
    assert y.shape == (3, 9) and y.dtype == torch.bfloat16


# ----------------------------------------------------------------------------- bad input found by a probe


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(fmt="mxfp9"), ValueError, "mxfp9"),
    (dict(block_size=48), ValueError, "block_size"),
    (dict(axis=5), ValueError, "axis=5"),
    (dict(shape=(3, 64)), ValueError, "data has shape"),  # a wrong row count used to be ignored
    (dict(shape=(4, 96)), ValueError, "expected"),
    (dict(shape=(4, -64)), ValueError, "non-negative"),
    (dict(data_dtype=torch.int8), TypeError, "data must be uint8"),
    (dict(scales_dtype=torch.float32), TypeError, "scales must be uint8"),
])
def test_mxtensor_validates_at_construction(kwargs, exc, match):
    t = slimops.mx.quantize(torch.randn(4, 64), "mxfp6")
    data = t.data.to(kwargs.pop("data_dtype", torch.uint8))
    scales = t.scales.to(kwargs.pop("scales_dtype", torch.uint8))
    args = dict(data=data, scales=scales, fmt="mxfp6", block_size=32, axis=1, shape=t.shape)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        slimops.mx.MXTensor(**args)


def test_mxtensor_normalises_format_and_axis():
    t = slimops.mx.quantize(torch.randn(4, 64), "mxfp6")
    u = slimops.mx.MXTensor(t.data, t.scales, "mxfp6", 32, -1, tuple(t.shape))
    assert u.fmt == "mxfp6_e2m3" and u.axis == 1 and u.shape == torch.Size([4, 64])
    assert_bits_equal(u.dequantize(), t.dequantize(), "rebuilt")


@pytest.mark.parametrize("backend", cpu_backends())
def test_seed_uses_all_64_bits(backend, backend_reset):
    """seed=1 and seed=1+2**32 used to give the same bits (the seed was cut to 32 bits without a word)."""
    x = torch.randn(8, 64)
    with slimops.use_backend(backend):
        a = slimops.mx.quantize(x, "mxfp4", stochastic=True, seed=1)
        b = slimops.mx.quantize(x, "mxfp4", stochastic=True, seed=1 + 2**32)
        c = slimops.mx.quantize(x, "mxfp4", stochastic=True, seed=2**63 - 1)
        d = slimops.mx.quantize(x, "mxfp4", stochastic=True, seed=-(2**63))
    assert not torch.equal(a.data, b.data)
    assert not torch.equal(c.data, d.data)
    with slimops.use_backend("reference"):  # and every backend agrees on the new keys
        assert torch.equal(slimops.mx.quantize(x, "mxfp4", stochastic=True, seed=1 + 2**32).data, b.data)
        assert torch.equal(slimops.mx.fake_quantize(x, "mxfp4", stochastic=True, seed=2**63 - 1),
                           slimops.mx.dequantize(c))


@pytest.mark.parametrize("seed,exc", [(2**63, ValueError), (-(2**63) - 1, ValueError), (1.5, TypeError),
                                      (True, TypeError)])
def test_seed_out_of_range_is_refused_clearly(seed, exc):
    with pytest.raises(exc, match="seed must"):
        slimops.mx.quantize(torch.randn(2, 32), "mxfp8", stochastic=True, seed=seed)
    with pytest.raises(exc, match="seed must"):
        slimops.mx.fake_quantize(torch.randn(2, 32), "mxfp8", stochastic=True, seed=seed)


# ----------------------------------------------------------------------------- out=


@pytest.mark.parametrize("device,backend", device_backends())
@pytest.mark.parametrize("fmt", ["mxfp8", "mxfp6", "mxint4"])
@pytest.mark.parametrize("axis,contiguous", [(-1, True), (0, True), (-1, False)])
def test_out_variants_write_the_callers_buffer(device, backend, fmt, axis, contiguous, backend_reset):
    x = make_x((6, 70), torch.bfloat16, device)
    with slimops.use_backend(backend):
        t = slimops.mx.quantize(x, fmt, 32, axis)
        want_dq, want_fq = t.dequantize(torch.bfloat16), slimops.mx.fake_quantize(x, fmt, 32, axis)
        buf = torch.full((70, 6), 7.0, dtype=torch.bfloat16, device=device).t() if not contiguous \
            else torch.full((6, 70), 7.0, dtype=torch.bfloat16, device=device)
        ptr = buf.data_ptr()
        assert t.dequantize(out=buf) is buf and buf.data_ptr() == ptr
        assert_bits_equal(buf, want_dq, "dequantize out=")
        buf.fill_(7.0)
        assert slimops.mx.fake_quantize(x, fmt, 32, axis, out=buf) is buf
        assert_bits_equal(buf, want_fq, "fake_quantize out=")


def test_out_variants_check_their_argument():
    x = torch.randn(4, 64)
    t = slimops.mx.quantize(x, "mxfp8")
    with pytest.raises(ValueError, match=r"out has shape \[4, 32\], expected \[4, 64\]"):
        t.dequantize(out=torch.empty(4, 32))
    with pytest.raises(TypeError, match="out must be torch.float16"):
        slimops.mx.fake_quantize(x.half(), "mxfp8", out=torch.empty(4, 64))
    with pytest.raises(TypeError, match="disagree"):
        t.dequantize(torch.bfloat16, out=torch.empty(4, 64))
    with pytest.raises(RuntimeError, match="not differentiable"):
        slimops.mx.fake_quantize(x.requires_grad_(), "mxfp8", out=torch.empty(4, 64))


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_out_variants_opcheck(backend, backend_reset):
    if backend == "native" and slimops._backend.native_module("_C") is None:
        pytest.skip("slimops._C not built")
    x = make_x((5, 70), torch.float32, "cpu")
    t = slimops.mx.quantize(x, "mxfp4")
    with slimops.use_backend(backend):
        torch.library.opcheck(torch.ops.slimops.mx_dequantize_out.default,
                              (t.data, t.scales, "mxfp4_e2m1", 32, 1, 70, torch.empty(5, 70)))
        torch.library.opcheck(torch.ops.slimops.mx_fake_quantize_out.default,
                              (x, "mxint8", 32, 1, "floor", False, 0, torch.empty(5, 70)))


# ----------------------------------------------------------------------------- CUDA graphs


@pytest.mark.parametrize("backend", [p.values[0] for p in gpu_backends()])
def test_cuda_graph_capture_and_replay(backend, backend_reset):
    """No host synchronisation inside the ops: a graph captures quantize / dequantize / fake-quantize."""
    if not torch.cuda.is_available():
        pytest.skip("CUDA graphs need a CUDA device; there is none here")
    if not slimops._backend.built(backend, "cuda"):
        pytest.skip(f"backend {backend} is not built here")
    x = torch.randn(256, 1024, device="cuda")
    with slimops.use_backend(backend):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up (compile, allocate) outside the capture
            for _ in range(2):
                slimops.mx.quantize(x, "mxfp4").dequantize(torch.bfloat16)
                slimops.mx.fake_quantize(x, "mxfp8", stochastic=True, seed=3)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = slimops.mx.quantize(x, "mxfp4").dequantize(torch.bfloat16)
            z = slimops.mx.fake_quantize(x, "mxfp8", stochastic=True, seed=3)
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.cuda.synchronize()
    with slimops.use_backend("reference"):
        assert_bits_equal(y, slimops.mx.quantize(x, "mxfp4").dequantize(torch.bfloat16), "replayed dequantize")
        assert_bits_equal(z, slimops.mx.fake_quantize(x, "mxfp8", stochastic=True, seed=3), "replayed fake_quantize")


def _vm_flags(addr: int) -> list:
    """The VmFlags of the mapping of this process that holds ``addr`` (Linux /proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                lo, hi = (int(v, 16) for v in head[0].split("-"))
                inside = lo <= addr < hi
            elif head and head[0] == "VmFlags:" and inside:
                return head[1:]
    return []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the huge-page hint is Linux's madvise")
@pytest.mark.skipif(native_module("_C") is None, reason="slimops._C not built")
def test_large_cpu_outputs_get_the_huge_page_hint_only_when_asked(monkeypatch, backend_reset):
    """With SLIMOPS_HUGE_PAGES=1, quantize / dequantize / fake_quantize mark a fresh output of 8 MiB
    or more MADV_HUGEPAGE (smaps flag "hg") before writing it; by default they leave it alone.
    The bits are the same either way."""
    x = torch.randn(2048, 4096)  # 32 MiB of fp32, 8 MiB of mxfp8 codes
    with slimops.use_backend("native"):
        monkeypatch.delenv("SLIMOPS_HUGE_PAGES", raising=False)
        t = slimops.mx.quantize(x, "mxfp8")
        off, fq_off = t.dequantize(torch.float32), slimops.mx.fake_quantize(x, "mxfp8")
        for y in (t.data, off, fq_off):
            assert "hg" not in _vm_flags(y.data_ptr() + y.nbytes // 2)
        monkeypatch.setenv("SLIMOPS_HUGE_PAGES", "1")
        t1 = slimops.mx.quantize(x, "mxfp8")
        on, fq_on = t1.dequantize(torch.float32), slimops.mx.fake_quantize(x, "mxfp8")
        for y in (t1.data, on, fq_on):
            assert "hg" in _vm_flags(y.data_ptr() + y.nbytes // 2)
    assert torch.equal(t.data, t1.data) and torch.equal(t.scales, t1.scales)
    assert torch.equal(on.view(torch.int32), off.view(torch.int32))
    assert torch.equal(fq_on.view(torch.int32), fq_off.view(torch.int32))
