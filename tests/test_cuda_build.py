"""slimops._C_cuda builds with nvcc through the project's CMakeLists, and its argument
checks run before any CUDA call (so they hold on a machine without a GPU too).

When the installed package has slimops._C_cuda (the bootstrap builds it wherever nvcc is found), the tests
load that one: it was built through the same CMakeLists. Otherwise the build goes into a temporary directory
for one architecture (sm_90a) only, to stay within a few minutes on a small machine. Skipped when nvcc or
cmake is missing.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ARCH = "90a"

pytestmark = pytest.mark.slow


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.access(os.path.join(home, "bin", "nvcc"), os.X_OK):
            return os.path.join(home, "bin", "nvcc")
    return None


def _run(cmd: list[str], env: dict, timeout: int, what: str) -> None:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr)[-6000:]
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{log}")


@pytest.fixture(scope="module")
def cuda_build(tmp_path_factory) -> pathlib.Path:
    """The installed slimops._C_cuda's path, else configure and build the _C_cuda target: the path of the
    built extension."""
    nvcc = _nvcc()
    installed = importlib.util.find_spec("slimops._C_cuda")
    if nvcc is not None and installed is not None and installed.origin:
        return pathlib.Path(installed.origin)
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot build slimops._C_cuda")
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not found on PATH: cannot build slimops._C_cuda")
    try:
        import pybind11
    except ImportError:
        pytest.skip("pybind11 is not installed in this Python: cannot build slimops._C_cuda")

    build = tmp_path_factory.mktemp("cuda-build")
    env = dict(os.environ, CUDACXX=nvcc)
    _run([cmake, "-S", str(REPO), "-B", str(build), f"-DSLIMOPS_CUDA_ARCHS={ARCH}",
          f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
          "-DCMAKE_BUILD_TYPE=Release"], env, 300, "CMake configure")
    cache = (build / "CMakeCache.txt").read_text(errors="replace")
    if "CMAKE_CUDA_COMPILER:" not in cache:
        pytest.fail("CMake did not enable CUDA although nvcc was found at " + nvcc)
    _run([cmake, "--build", str(build), "--target", "_C_cuda", "-j2"], env, 900, "Building _C_cuda")
    libs = sorted(build.glob("_C_cuda*.so")) + sorted(build.glob("_C_cuda*.pyd"))
    assert libs, f"no _C_cuda extension in {build}: {sorted(p.name for p in build.iterdir())}"
    return libs[0]


@pytest.fixture(scope="module")
def cuda_module(cuda_build):
    """The built extension, loaded from its path (it is not on sys.path)."""
    spec = importlib.util.spec_from_file_location("_C_cuda", cuda_build)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # loading needs no GPU: cudart is linked statically, used lazily
    return module


def test_cuda_extension_builds(cuda_build):
    assert cuda_build.is_file() and cuda_build.stat().st_size > 0


def test_cuda_extension_exports(cuda_module):
    for name in ("mx_quantize", "mx_dequantize", "mx_fake_quantize", "device_info"):
        assert callable(getattr(cuda_module, name)), name
    info = cuda_module.device_info()  # never raises, GPU or not
    assert info["cudart_version_built"] >= 12000
    assert info["device_count"] >= 0


# Valid arguments (fake, non-null, aligned addresses; nothing is ever launched with them).
X, DATA, SCALES, OUT = 1 << 20, 2 << 20, 3 << 20, 4 << 20
Q = dict(x=X, dtype=1, rows=4, length=64, data=DATA, scales=SCALES, fmt=0, block_size=32, scale_mode=0,
         stochastic=False, seed=0, stream=0)
D = dict(data=DATA, scales=SCALES, rows=4, length=64, out=OUT, dtype=1, fmt=0, block_size=32, stream=0)
F = dict(x=X, dtype=1, rows=4, length=64, out=OUT, fmt=0, block_size=32, scale_mode=0, stochastic=False,
         seed=0, stream=0)

BAD = [
    # (function, overrides, the argument the message must name)
    ("mx_quantize", dict(fmt=9), "fmt"),
    ("mx_quantize", dict(fmt=-1), "fmt"),
    ("mx_quantize", dict(block_size=48), "block_size"),
    ("mx_quantize", dict(block_size=128), "block_size"),
    ("mx_quantize", dict(dtype=3), "dtype"),
    ("mx_quantize", dict(scale_mode=2), "scale_mode"),
    ("mx_quantize", dict(rows=-1), "rows"),
    ("mx_quantize", dict(length=-5), "length"),
    ("mx_quantize", dict(rows=1 << 40, length=1 << 40), "rows \\* length"),
    ("mx_quantize", dict(x=0), "x must not be a null pointer"),
    ("mx_quantize", dict(data=0), "data must not be a null pointer"),
    ("mx_quantize", dict(scales=0), "scales must not be a null pointer"),
    ("mx_quantize", dict(x=X + 1), "x must be aligned"),
    ("mx_quantize", dict(x=X + 2, dtype=0), "x must be aligned"),
    ("mx_dequantize", dict(fmt=42), "fmt"),
    ("mx_dequantize", dict(block_size=8), "block_size"),
    ("mx_dequantize", dict(dtype=7), "dtype"),
    ("mx_dequantize", dict(data=0), "data must not be a null pointer"),
    ("mx_dequantize", dict(scales=0), "scales must not be a null pointer"),
    ("mx_dequantize", dict(out=0), "out must not be a null pointer"),
    ("mx_dequantize", dict(out=OUT + 1), "out must be aligned"),
    ("mx_fake_quantize", dict(fmt=9), "fmt"),
    ("mx_fake_quantize", dict(block_size=0), "block_size"),
    ("mx_fake_quantize", dict(dtype=-1), "dtype"),
    ("mx_fake_quantize", dict(scale_mode=-1), "scale_mode"),
    ("mx_fake_quantize", dict(x=0), "x must not be a null pointer"),
    ("mx_fake_quantize", dict(out=0), "out must not be a null pointer"),
    ("mx_fake_quantize", dict(out=OUT + 3, dtype=0), "out must be aligned"),
]


@pytest.mark.parametrize("fn,overrides,names", BAD, ids=[f"{b[0]}-{'-'.join(b[1])}" for b in BAD])
def test_cuda_extension_rejects_bad_arguments(cuda_module, fn, overrides, names):
    """A ValueError naming the argument, before any CUDA call (so on any machine)."""
    kwargs = dict({"mx_quantize": Q, "mx_dequantize": D, "mx_fake_quantize": F}[fn], **overrides)
    with pytest.raises(ValueError, match=names):
        getattr(cuda_module, fn)(**kwargs)


def test_cuda_extension_empty_is_a_no_op(cuda_module):
    """Empty tensors launch nothing (null pointers allowed), so this runs without a GPU too."""
    cuda_module.mx_quantize(**dict(Q, rows=0, x=0, data=0, scales=0))
    cuda_module.mx_quantize(**dict(Q, length=0, x=0, data=0, scales=0))
    cuda_module.mx_dequantize(**dict(D, rows=0, data=0, scales=0, out=0))
    cuda_module.mx_fake_quantize(**dict(F, length=0, x=0, out=0))


def test_cuda_extension_reports_cuda_errors(cuda_module):
    """Without a usable GPU a launch fails with a RuntimeError carrying CUDA's message."""
    if cuda_module.device_info()["device_count"] > 0:
        pytest.skip("a GPU is present: this test would launch on fake pointers")
    for fn, kwargs in (("mx_quantize", Q), ("mx_dequantize", D), ("mx_fake_quantize", F)):
        with pytest.raises(RuntimeError, match=f"slimops._C_cuda.{fn}: CUDA error"):
            getattr(cuda_module, fn)(**kwargs)
