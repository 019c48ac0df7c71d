"""The 'nvrtc' backend: the MX CUDA kernels compiled by NVRTC (slimops/mx/nvrtc.py).

On any machine: every program the backend compiles goes through the real NVRTC (libnvrtc
through ctypes, from the nvidia-cuda-nvrtc wheel) to PTX, with every entry point it
launches; the source reaches no host header; the PTX assembles (ptxas, when present); the
backend's selection and its errors. With CUDA and CuPy: bit-exact runs against the
reference (besides the shared backend tests of test_mx_backends.py / test_mx_ops.py, which
take "nvrtc" from slimops.testing.gpu_backends()).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import torch

import slimops
from slimops import _backend
from slimops.mx import nvrtc
from slimops.mx.formats import FORMATS
from slimops.testing import assert_bits_equal

from .test_mx_backends import DTYPES, check_against_reference, make_input

LIBNVRTC = nvrtc.find_libnvrtc()
needs_libnvrtc = pytest.mark.skipif(LIBNVRTC is None, reason="libnvrtc not found (pip install "
                                    "nvidia-cuda-nvrtc==13.0.88, as .ci/bootstrap does, or set CUDA_HOME)")
needs_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and _backend.cupy_status() is None),
                               reason="needs CUDA and CuPy")
PAIRS = [(f, d) for f in FORMATS for d in DTYPES]
PAIR_IDS = [f"{f}-{str(d)[6:]}" for f, d in PAIRS]


def entries_in(ptx: bytes) -> set:
    return set(re.findall(r"\.entry\s+(\w+)\(", ptx.decode()))


# ----------------------------------------------------------------------------- the source


def test_source_inlines_every_local_include_and_reaches_no_host_header():
    """Every quoted include is inlined; every <...> include sits under #if !defined(__CUDACC_RTC__)."""
    src = nvrtc.rtc_source()
    assert not re.search(r'^\s*#\s*include\s+"', src, re.M), "a local include was left for NVRTC to find"
    active = []  # per open #if: whether its lines are compiled under NVRTC (None: depends on other macros)
    reached = []
    for line in src.splitlines():
        d = line.strip()
        if re.match(r"#\s*if\s+!\s*defined\s*\(\s*__CUDACC_RTC__\s*\)", d):
            active.append(False)
        elif re.match(r"#\s*if\s+defined\s*\(\s*__CUDACC_RTC__\s*\)", d):
            active.append(True)
        elif re.match(r"#\s*if", d):
            active.append(None)
        elif re.match(r"#\s*else", d):
            active[-1] = None if active[-1] is None else not active[-1]
        elif re.match(r"#\s*elif", d):
            active[-1] = None
        elif re.match(r"#\s*endif", d):
            active.pop()
        elif re.match(r"#\s*include\s*<", d) and False not in active:
            reached.append(d)
    assert not active, "unbalanced #if / #endif"
    assert reached == [], f"host headers reached under NVRTC: {reached}"
    # The pieces the task asks for are there: the typedefs, the guarded element header, the entries.
    assert "typedef unsigned int uint32_t;" in src and "SLIMOPS_MX_RTC_ENTRIES" in src


@needs_libnvrtc
def test_nvrtc_refuses_a_host_header():
    """What the compile tests rely on: NVRTC here has no C library headers, so a reached one fails."""
    with pytest.raises(nvrtc.NVRTCError, match="stdint.h"):
        nvrtc.compile_ptx_with_libnvrtc("#include <stdint.h>\n" + nvrtc.rtc_source(), "compute_90")


def test_entry_names():
    f = FORMATS["mxfp8_e4m3"]
    names = nvrtc.entry_names(f, torch.bfloat16)
    assert len(names) == len(set(names)) == 10
    assert "slimops_mx_quantize_fp8_e4m3_bf16_rne_flat" in names
    assert "slimops_mx_fake_quantize_fp8_e4m3_bf16_sr_general" in names
    assert "slimops_mx_dequantize_fp8_e4m3_bf16_general" in names
    assert nvrtc.entry_name("quantize", FORMATS["mxint2"], torch.float16, True, False) == \
        "slimops_mx_quantize_int2_f16_sr_general"


# ----------------------------------------------------------------------------- real NVRTC


@needs_libnvrtc
@pytest.mark.parametrize("fmt,dtype", PAIRS, ids=PAIR_IDS)
def test_every_program_compiles_with_nvrtc(fmt, dtype):
    """Each (format, dtype) program the backend compiles, for compute_90: every entry it launches is in
    the PTX, and the fp32 arithmetic is IEEE (no flush-to-zero: the bits must equal nvcc's)."""
    f = FORMATS[fmt]
    ptx, log = nvrtc.compile_ptx_with_libnvrtc(nvrtc.program_source(f, dtype), "compute_90")
    assert "error" not in log.lower(), log
    assert entries_in(ptx) == set(nvrtc.entry_names(f, dtype))
    assert b".ftz" not in ptx, "flush-to-zero arithmetic in the PTX"


@needs_libnvrtc
@pytest.mark.parametrize("arch", ["compute_80", "compute_75"])
@pytest.mark.parametrize("fmt,dtype", [("mxfp8_e5m2", torch.bfloat16), ("mxfp4_e2m1", torch.float16)],
                         ids=["mxfp8_e5m2-bf16", "mxfp4_e2m1-f16"])
def test_programs_compile_for_other_archs(arch, fmt, dtype):
    """sm_80 takes the cvt.rn.bf16 / f16x2 instructions, below it the header's conversions."""
    f = FORMATS[fmt]
    ptx, _ = nvrtc.compile_ptx_with_libnvrtc(nvrtc.program_source(f, dtype), arch)
    assert entries_in(ptx) == set(nvrtc.entry_names(f, dtype))
    cvt = b"cvt.rn.bf16" if dtype == torch.bfloat16 else b"cvt.rn.f16x2.f32"
    assert (cvt in ptx) == (arch == "compute_80")


@needs_libnvrtc
@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas not found: cannot assemble the PTX")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_ptx_assembles_for_sm90(dtype, tmp_path):
    """The inline PTX of the 16-bit conversions is valid: ptxas assembles the program."""
    ptx, _ = nvrtc.compile_ptx_with_libnvrtc(nvrtc.program_source(FORMATS["mxfp6_e3m2"], dtype), "compute_90")
    (tmp_path / "p.ptx").write_bytes(ptx)
    r = subprocess.run(["ptxas", "-arch=sm_90", str(tmp_path / "p.ptx"), "-o", str(tmp_path / "p.cubin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _ptx_bodies(ptx: str) -> dict:
    return {m.group(1): m.group(2) for m in re.finditer(r"\.entry\s+(\w+)\((.*?)\n\}\n", ptx, re.S)}


def _numeric_ops(body: str) -> dict:
    """Counts of the float, conversion, shuffle and memory instructions of a PTX kernel body."""
    out: dict = {}
    for line in body.splitlines():
        toks = line.strip().lstrip("{").split()
        if not toks or toks[0].startswith(("//", ".", "$", "}", ")")):
            continue
        op = (toks[1] if toks[0].startswith("@") else toks[0]).rstrip(";")
        if re.search(r"f32|f16|bf16|fma|div|shfl|ld\.|st\.|bar", op) and not op.startswith("ld.param"):
            out[op] = out.get(op, 0) + 1
    return out


NVCC = shutil.which("nvcc")


@needs_libnvrtc
@pytest.mark.skipif(NVCC is None, reason="nvcc not found: cannot compare with the nvcc build")
def test_nvrtc_kernels_do_the_same_arithmetic_as_nvcc(tmp_path):
    """One quantize and one dequantize kernel, as nvcc builds them for slimops._C_cuda and as NVRTC
    builds the entry points: the same float, conversion, shuffle and memory instructions."""
    repo = nvrtc.kernel_dir().parents[1]
    (tmp_path / "k.cu").write_text(
        '#include "kernels/mx/mx_kernels.cuh"\n'
        "namespace slimops { namespace cuda { namespace {\n"
        "template __global__ void mx_quantize_kernel<mx::kFp6E3M2, kBF16, true, true, true>(const QuantizeParams);\n"
        "template __global__ void mx_dequantize_kernel<mx::kFp8E5M2, kF16, true>(const DequantizeParams);\n"
        "}}}\n")
    r = subprocess.run([NVCC, "-std=c++17", "-arch=sm_90", "-O3", "-ftz=false", "-prec-div=true", "-prec-sqrt=true",
                        f"-I{repo}", "-ptx", str(tmp_path / "k.cu"), "-o", str(tmp_path / "k.ptx")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    by_nvcc = _ptx_bodies((tmp_path / "k.ptx").read_text())
    for fmt, dtype, entry, template in [
            ("mxfp6_e3m2", torch.bfloat16, "slimops_mx_fake_quantize_fp6_e3m2_bf16_sr_flat", "mx_quantize_kernel"),
            ("mxfp8_e5m2", torch.float16, "slimops_mx_dequantize_fp8_e5m2_f16_flat", "mx_dequantize_kernel")]:
        ptx, _ = nvrtc.compile_ptx_with_libnvrtc(nvrtc.program_source(FORMATS[fmt], dtype), "compute_90")
        mine = _numeric_ops(_ptx_bodies(ptx.decode())[entry])
        theirs = _numeric_ops(next(v for k, v in by_nvcc.items() if template in k))
        assert "mul.f32" in mine and mine == theirs, f"{entry}: {mine} != nvcc's {theirs}"


def test_cupy_driver_compiles_a_cubin_once(tmp_path, monkeypatch):
    """The runtime route (CuPy's NVRTC, our options, the disk cache) without a GPU."""
    if _backend.cupy_status() is not None:
        pytest.skip(f"CuPy with NVRTC not usable here: {_backend.cupy_status()}")
    monkeypatch.setenv("SLIMOPS_CACHE_DIR", str(tmp_path))
    driver = nvrtc.CupyNVRTC()
    src = nvrtc.program_source(FORMATS["mxint4"], torch.float32)
    path, kind = nvrtc.compile_program(src, 90, driver, driver.max_arch())
    assert kind == "cubin" and path.read_bytes()[:4] == b"\x7fELF" and path.parent == tmp_path / "nvrtc"

    class NoCompile:
        def version(self):
            return driver.version()

        def compile(self, *a, **k):
            raise AssertionError("compiled again instead of using the cache")

    assert nvrtc.compile_program(src, 90, NoCompile(), driver.max_arch()) == (path, "cubin")
    # An arch newer than this NVRTC knows: PTX for the newest it knows, for the driver to compile.
    path, kind = nvrtc.compile_program(src, driver.max_arch() + 10, driver, driver.max_arch())
    assert kind == "ptx" and entries_in(path.read_bytes()) == set(nvrtc.entry_names(FORMATS["mxint4"], torch.float32))


# ----------------------------------------------------------------------------- selection


def test_nvrtc_is_a_backend_declared_for_mx_on_cuda():
    assert "nvrtc" in slimops.BACKENDS
    assert _backend.declared("mx", "mx_quantize", "cuda") == ("native", "nvrtc", "triton")
    assert "nvrtc" not in _backend.declared("mx", "mx_quantize", "cpu")
    table = slimops.info()["families"]["mx"]["mx_dequantize"]["cuda"]
    assert table["declared"] == ["native", "nvrtc", "triton"]
    assert isinstance(slimops.info()["nvrtc"], str) and "nvrtc" in slimops._info.format_info(slimops.info())


def test_nvrtc_on_cpu_tensors_raises_saying_why(backend_reset):
    with slimops.use_backend("nvrtc"):
        with pytest.raises(RuntimeError, match="CUDA tensors only"):
            slimops.mx.quantize(torch.randn(4, 32), "mxfp8")
        with pytest.raises(RuntimeError, match="CUDA tensors only"):
            slimops.mx.fake_quantize(torch.randn(4, 32), "mxfp8")


def test_nvrtc_launch_helpers_refuse_cpu_tensors_before_any_launch():
    with pytest.raises(ValueError, match="x must be a CUDA tensor"):
        nvrtc.quantize_2d(torch.randn(2, 32), FORMATS["mxfp8_e4m3"], 32)
    with pytest.raises(ValueError, match="block_size must be 16, 32 or 64"):
        nvrtc.fake_quantize_2d(torch.randn(2, 32), FORMATS["mxfp8_e4m3"], 48)


@pytest.fixture
def fake_cuda(monkeypatch):
    """resolve() as on a CUDA machine: a device, with CuPy / _C_cuda as each test sets them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    state = {"cupy": None, "native": False}
    monkeypatch.setattr(_backend, "cupy_status", lambda: state["cupy"])
    real = _backend.native_module
    monkeypatch.setattr(_backend, "native_module",
                        lambda name: (object() if state["native"] else None) if name == "_C_cuda" else real(name))
    return state


def test_nvrtc_without_cupy_raises_saying_why(fake_cuda, backend_reset):
    fake_cuda["cupy"] = "ModuleNotFoundError: No module named 'cupy'"
    with slimops.use_backend("nvrtc"):
        with pytest.raises(RuntimeError, match=r"needs CuPy with NVRTC .*No module named 'cupy'"):
            _backend.resolve("mx", "mx_quantize", "cuda", torch.float32)


def test_nvrtc_without_a_device_raises_saying_why(backend_reset, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with slimops.use_backend("nvrtc"):
        with pytest.raises(RuntimeError, match="needs a CUDA device"):
            _backend.resolve("mx", "mx_dequantize", "cuda", torch.bfloat16)


def test_auto_prefers_native_then_nvrtc_then_triton_on_cuda(fake_cuda, backend_reset):
    fake_cuda.update(native=True)
    assert _backend.resolve("mx", "mx_quantize", "cuda", torch.float32) == "native"
    fake_cuda.update(native=False)
    assert _backend.resolve("mx", "mx_quantize", "cuda", torch.float32) == "nvrtc"
    with slimops.use_backend("nvrtc"):
        assert _backend.resolve("mx", "mx_fake_quantize", "cuda", torch.float16) == "nvrtc"
    fake_cuda.update(cupy="ImportError: no cupy")
    want = "triton" if _backend.triton_available() else "reference"
    assert _backend.resolve("mx", "mx_quantize", "cuda", torch.float32) == want
    # The other families have no nvrtc implementation: asking for it says so.
    with slimops.use_backend("nvrtc"):
        with pytest.raises(RuntimeError, match="gat has no nvrtc implementation"):
            _backend.resolve("gat", "gat_forward", "cuda", torch.float32)


# ----------------------------------------------------------------------------- on a GPU


@needs_gpu
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_gpu_odd_sizes_every_dtype(fmt):
    for dtype in DTYPES:
        for shape, bs in (((1, 1), 16), ((7, 33), 32), ((3, 4097), 64), ((2, 160), 32)):
            check_against_reference("nvrtc", "cuda", fmt, shape, dtype, bs)
        check_against_reference("nvrtc", "cuda", fmt, (9, 70), dtype, 16, 0, scale_mode="rceil",
                                stochastic=True, seed=11)


@needs_gpu
def test_gpu_runs_on_the_current_stream(backend_reset):
    x = make_input((64, 256), torch.bfloat16).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with slimops.use_backend("nvrtc"), torch.cuda.stream(side):
        t = slimops.mx.quantize(x, "mxfp4")
        y = t.dequantize(torch.float16)
        z = slimops.mx.fake_quantize(x[:, 1:], "mxint8")  # length 255: the general path
    torch.cuda.current_stream().wait_stream(side)
    with slimops.use_backend("reference"):
        r = slimops.mx.quantize(x, "mxfp4")
        assert_bits_equal(t.data, r.data, "data")
        assert_bits_equal(y, r.dequantize(torch.float16), "dequantize")
        assert_bits_equal(z, slimops.mx.fake_quantize(x[:, 1:], "mxint8"), "fake_quantize")
