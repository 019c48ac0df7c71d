"""The MX family's CUDA kernels compiled at first use by NVRTC (backend ``"nvrtc"``), for installs without nvcc.

The source is ``kernels/mx/mx_kernels_rtc.cu`` (``extern "C"`` entry points around
the kernel bodies of ``mx_kernels.cuh``, the ones ``slimops._C_cuda`` runs), its
local includes inlined into one string. Each (format, dtype) pair is one NVRTC
program of 10 kernels, compiled with nvcc's numerics (``-ftz=false -prec-div=true
-prec-sqrt=true -fmad=true``; CuPy's own ``RawModule(code=...)`` route adds
``-ftz=true``, which would flush fp32 subnormals, so it is not used), cached on disk
(``$SLIMOPS_CACHE_DIR`` or ``~/.cache/slimops/nvrtc``) and in memory per device,
loaded with ``cupy.RawModule(path=...)`` and launched on torch tensors through their
``data_ptr()`` on torch's current stream. Grid, block and the FLAT-or-general choice
mirror ``kernels/mx/mx_kernels.cu``.

``compile_program`` also runs without CuPy or a GPU (``CtypesNVRTC``: libnvrtc
through ctypes, e.g. from the ``nvidia-cuda-nvrtc`` wheel): the tests compile every
program to PTX that way.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import hashlib
import os
import pathlib
import re
import sys
import threading

import torch

from .formats import SCALE_MODE_CODES, MXFormat

THREADS = 256  # kThreads of mx_kernels.cuh
CHUNK = 16  # kChunk: elements per thread
MAX_GRID = 1 << 30  # kMaxGrid
# nvcc's defaults, spelled out as CMakeLists.txt does for slimops._C_cuda: fp32 subnormals and IEEE
# division keep the bits equal to the reference's.
OPTIONS = ("-std=c++17", "-ftz=false", "-prec-div=true", "-prec-sqrt=true", "-fmad=true")
DTYPE_NAMES = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}
_DTYPE_IDS = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
_ENTRY_FILE = "mx_kernels_rtc.cu"


# ----------------------------------------------------------------------------- source


def kernel_dir() -> pathlib.Path:
    """``kernels/mx``: beside the package in a wheel (``slimops/_kernels/mx``), else in the source tree."""
    here = pathlib.Path(__file__).resolve().parent.parent  # python/slimops or site-packages/slimops
    for cand in (here / "_kernels" / "mx", here.parent.parent / "kernels" / "mx"):
        if (cand / _ENTRY_FILE).is_file():
            return cand
    raise FileNotFoundError(f"the MX kernel sources ({_ENTRY_FILE}) are neither in {here / '_kernels' / 'mx'} nor "
                            f"in {here.parent.parent / 'kernels' / 'mx'}")


_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def _inline(path: pathlib.Path, seen: set) -> list:
    """``path``'s lines with its quoted includes inlined once each (they are all ``#pragma once``)."""
    out = []
    for line in path.read_text().splitlines():
        m = _INCLUDE.match(line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if not inc.is_file():
                raise FileNotFoundError(f"{path.name} includes {m.group(1)!r}, not found beside it")
            if inc not in seen:
                seen.add(inc)
                out += [f"// ---- {inc.name}"] + _inline(inc, seen) + [f"// ---- end of {inc.name}"]
            continue
        if line.strip() == "#pragma once":
            continue
        out.append(line)
    return out


@functools.lru_cache(maxsize=None)
def rtc_source() -> str:
    """``mx_kernels_rtc.cu`` with every local include inlined: the text NVRTC gets, with no include path.

    Compiled as it is, it defines all 270 entry points; :func:`program_source` selects one pair's.
    """
    entry = kernel_dir() / _ENTRY_FILE
    return "\n".join(_inline(entry, {entry.resolve()})) + "\n"


def c_format_name(fmt: MXFormat) -> str:
    """The format's name in the entry points: ``mxfp8_e4m3`` -> ``fp8_e4m3``."""
    return fmt.name[2:]


def entry_name(op: str, fmt: MXFormat, dtype: torch.dtype, stochastic: bool = False, flat: bool = True) -> str:
    """The ``extern "C"`` kernel of ``op`` (quantize, fake_quantize, dequantize) for ``fmt`` and ``dtype``."""
    base = f"slimops_mx_{op}_{c_format_name(fmt)}_{DTYPE_NAMES[dtype]}"
    if op != "dequantize":
        base += "_sr" if stochastic else "_rne"
    return base + ("_flat" if flat else "_general")


def entry_names(fmt: MXFormat, dtype: torch.dtype) -> list:
    """Every entry point of one (format, dtype) program: what this backend may launch."""
    names = [entry_name(op, fmt, dtype, sr, flat) for op in ("quantize", "fake_quantize")
             for sr in (False, True) for flat in (True, False)]
    return names + [entry_name("dequantize", fmt, dtype, flat=flat) for flat in (True, False)]


def program_source(fmt: MXFormat, dtype: torch.dtype) -> str:
    """The NVRTC program of one (format, dtype) pair: its 10 entry points only."""
    return (f"#define SLIMOPS_MX_RTC_SELECT 1\n{rtc_source()}"
            f"SLIMOPS_MX_RTC_ENTRIES({c_format_name(fmt)}, {fmt.format_id}, {DTYPE_NAMES[dtype]}, "
            f"{_DTYPE_IDS[dtype]})\n")


# ----------------------------------------------------------------------------- NVRTC drivers


class NVRTCError(RuntimeError):
    """NVRTC refused a program; the message carries its log."""


class CtypesNVRTC:
    """libnvrtc through ctypes (no CuPy, no GPU needed): ``compile(source, options) -> (ptx or cubin, log)``."""

    def __init__(self, path: str):
        folder = os.path.dirname(path)
        # libnvrtc dlopens its builtins by soname: load the one beside it first (a wheel's lib/ is not on the
        # loader's path).
        for builtins in sorted(glob.glob(os.path.join(folder, "libnvrtc-builtins.so*"))):
            if ".alt." not in builtins:
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
                break
        self.path = path
        self.lib = ctypes.CDLL(path)
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def version(self) -> tuple:
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def max_arch(self) -> int:
        """The newest compute capability this NVRTC compiles for (e.g. 121)."""
        n = ctypes.c_int()
        self._check(self.lib.nvrtcGetNumSupportedArchs(ctypes.byref(n)), "nvrtcGetNumSupportedArchs")
        archs = (ctypes.c_int * n.value)()
        self._check(self.lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
        return max(archs)

    def _check(self, status: int, what: str, log: str = "") -> None:
        if status != 0:
            raise NVRTCError(f"{what}: {self.lib.nvrtcGetErrorString(status).decode()}\n{log}")

    def compile(self, source: str, options, name: str = _ENTRY_FILE, cubin: bool = False) -> tuple:
        prog = ctypes.c_void_p()
        self._check(self.lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
                    "nvrtcCreateProgram")
        try:
            opts = [o.encode() for o in options]
            status = self.lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
            size = ctypes.c_size_t()
            self._check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
            buf = ctypes.create_string_buffer(size.value)
            self._check(self.lib.nvrtcGetProgramLog(prog, buf), "nvrtcGetProgramLog")
            log = buf.value.decode(errors="replace")
            self._check(status, "nvrtcCompileProgram", log)
            kind = "CUBIN" if cubin else "PTX"
            self._check(getattr(self.lib, f"nvrtcGet{kind}Size")(prog, ctypes.byref(size)), f"nvrtcGet{kind}Size")
            out = ctypes.create_string_buffer(size.value)
            self._check(getattr(self.lib, f"nvrtcGet{kind}")(prog, out), f"nvrtcGet{kind}")
            raw = out.raw[: size.value]
            return (raw if cubin else raw.rstrip(b"\0")), log
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


def find_libnvrtc() -> "str | None":
    """A libnvrtc shared library: from an installed ``nvidia-cuda-nvrtc`` wheel, ``CUDA_HOME``, or the loader."""
    roots = [pathlib.Path(p) / "nvidia" for p in sys.path if p and os.path.isdir(os.path.join(p, "nvidia"))]
    cands = []
    for root in roots:
        for sub in ("cu13/lib", "cu12/lib", "cuda_nvrtc/lib"):
            cands += sorted(glob.glob(str(root / sub / "libnvrtc.so*")), reverse=True)
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            cands += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")), reverse=True)
    for cand in cands:
        if ".alt." not in cand and "builtins" not in cand:
            return cand
    import ctypes.util

    return ctypes.util.find_library("nvrtc")


def compile_ptx_with_libnvrtc(source: str, arch: str = "compute_90", options=OPTIONS, lib: "str | None" = None):
    """Compile ``source`` to PTX for ``arch`` with libnvrtc through ctypes: ``(ptx bytes, log)``; NVRTCError on failure."""
    path = lib or find_libnvrtc()
    if path is None:
        raise FileNotFoundError("no libnvrtc found (pip install nvidia-cuda-nvrtc, or set CUDA_HOME)")
    return _ctypes_driver(path).compile(source, (*options, f"--gpu-architecture={arch}"))


@functools.lru_cache(maxsize=None)
def _ctypes_driver(path: str) -> CtypesNVRTC:
    return CtypesNVRTC(path)


class CupyNVRTC:
    """The libnvrtc that CuPy loaded (``cupy.cuda.nvrtc``), with :class:`CtypesNVRTC`'s interface."""

    def __init__(self):
        from cupy.cuda import nvrtc

        self.nvrtc = nvrtc

    def version(self) -> tuple:
        return tuple(self.nvrtc.getVersion())

    def max_arch(self) -> int:
        return max(self.nvrtc.getSupportedArchs())

    def compile(self, source: str, options, name: str = _ENTRY_FILE, cubin: bool = False) -> tuple:
        nv = self.nvrtc
        prog = nv.createProgram(source, name, (), ())
        try:
            try:
                nv.compileProgram(prog, list(options))
            except nv.NVRTCError as e:
                raise NVRTCError(f"nvrtcCompileProgram: {e}\n{nv.getProgramLog(prog)}") from None
            log = nv.getProgramLog(prog)
            out = nv.getCUBIN(prog) if cubin else nv.getPTX(prog)
            out = out.encode() if isinstance(out, str) else bytes(out)
            return (out if cubin else out.rstrip(b"\0")), log
        finally:
            nv.destroyProgram(prog)


# ----------------------------------------------------------------------------- compile and load (CuPy)


def _cache_dir() -> pathlib.Path:
    root = os.environ.get("SLIMOPS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "slimops")
    return pathlib.Path(root) / "nvrtc"


def compile_program(source: str, arch: int, driver, max_arch: int = 0) -> tuple:
    """``(path of the binary, kind)`` of ``source`` for compute capability ``arch`` (e.g. 90), cached on disk.

    A cubin for ``sm_<arch>`` when this NVRTC knows the arch (``max_arch``: the newest it knows, 0 to
    try), else PTX for the newest it knows, which the driver compiles (as CuPy does).
    """
    cubin = not max_arch or arch <= max_arch
    target = f"sm_{arch}" if cubin else f"compute_{max_arch}"
    options = (*OPTIONS, f"--gpu-architecture={target}")
    key = hashlib.sha256("\0".join((source, *options, repr(driver.version()))).encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.{'cubin' if cubin else 'ptx'}"
    if not path.is_file():
        binary, _ = driver.compile(source, options, cubin=cubin)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(binary)
        os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
    return path, "cubin" if cubin else "ptx"


_LOCK = threading.Lock()
_MODULES: dict = {}


def _module(device: torch.device, fmt: MXFormat, dtype: torch.dtype):
    """The loaded program of (fmt, dtype) on ``device`` (a ``cupy.RawModule``), compiled once."""
    import cupy

    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (index, fmt.name, dtype)
    mod = _MODULES.get(key)
    if mod is None:
        with _LOCK:
            mod = _MODULES.get(key)
            if mod is None:
                major, minor = torch.cuda.get_device_capability(index)
                driver = _cupy_driver()
                path, _ = compile_program(program_source(fmt, dtype), major * 10 + minor, driver, driver.max_arch())
                with cupy.cuda.Device(index):
                    mod = cupy.RawModule(path=str(path))
                    for name in entry_names(fmt, dtype):  # load now, on this device: launches only look up
                        mod.get_function(name)
                _MODULES[key] = mod
    return mod


@functools.lru_cache(maxsize=None)
def _cupy_driver() -> CupyNVRTC:
    return CupyNVRTC()


# ----------------------------------------------------------------------------- launches


def _mix32(x: int) -> int:
    """'lowbias32' (mx_element.cuh's mix32) on a Python int."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def _geometry(rows: int, length: int, block_size: int, bits: int) -> tuple:
    """(units, chunks_per_row, row_bytes, log2_lanes), as mx_kernels.cu's geometry()."""
    lanes = block_size // CHUNK
    chunks_per_row = -(-length // block_size) * lanes
    return rows * chunks_per_row, chunks_per_row, (length * bits + 7) // 8, lanes.bit_length() - 1


def _check_args(rows: int, length: int, block_size: int, **tensors) -> None:
    """The checks of csrc/mx/mx_args.h, before any launch: ValueError naming the argument."""
    if rows < 0 or length < 0:
        raise ValueError(f"rows and length must be >= 0, got {rows} and {length}")
    if length and rows > (2**63 - 1) // 4 // length:
        raise ValueError(f"rows * length is too large: {rows} * {length}")
    if block_size not in (16, 32, 64):
        raise ValueError(f"block_size must be 16, 32 or 64, got {block_size}")
    device = None
    for name, t in tensors.items():
        if t.device.type != "cuda":
            raise ValueError(f"{name} must be a CUDA tensor for backend 'nvrtc', got one on {t.device}")
        if device is not None and t.device != device:
            raise ValueError(f"{name} is on {t.device}, the other tensors on {device}")
        device = t.device
        if not t.is_contiguous():
            raise ValueError(f"{name} must be contiguous")
        if t.data_ptr() == 0 and t.numel():
            raise ValueError(f"{name} must not be a null pointer")
        if t.data_ptr() % t.element_size():
            raise ValueError(f"{name} must be aligned to its element size ({t.element_size()} bytes)")


def _aligned(t: torch.Tensor, n: int) -> bool:
    return t.data_ptr() % n == 0


def _launch(device: torch.device, fmt: MXFormat, dtype: torch.dtype, name: str, units: int, args: tuple) -> None:
    import cupy
    import numpy as np

    kernel = _module(device, fmt, dtype).get_function(name)
    grid = min(-(-units // THREADS), MAX_GRID)
    stream = torch.cuda.current_stream(device).cuda_stream
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(stream, device.index):
        kernel((grid,), (THREADS,), tuple(a if isinstance(a, np.generic) else np.uint64(a) for a in args))


def _quantize(x2d, fmt, block_size, scale_mode, stochastic, seed, data, scales, out, fake):
    import numpy as np

    rows, length = x2d.shape
    units, cpr, row_bytes, log2_lanes = _geometry(rows, length, block_size, fmt.bits)
    if units == 0:
        return
    flat = length % block_size == 0 and _aligned(x2d, 16)
    flat = flat and (_aligned(out, 16) if fake else _aligned(data, 16 if fmt.bits == 8 else 8 if fmt.bits == 4 else 4))
    op = "fake_quantize" if fake else "quantize"
    name = entry_name(op, fmt, x2d.dtype, stochastic, flat)
    ptrs = [x2d.data_ptr(), 0 if fake else data.data_ptr(), 0 if fake else scales.data_ptr(),
            out.data_ptr() if fake else 0]
    _launch(x2d.device, fmt, x2d.dtype, name, units,
            (*ptrs, np.int64(length), np.int64(units), np.int64(cpr), np.int64(row_bytes), np.int32(log2_lanes),
             np.int32(SCALE_MODE_CODES[scale_mode]), np.uint32(_mix32(seed))))


def quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                stochastic: bool = False, seed: int = 0, out: "tuple | None" = None):
    """(rows, L) fp32/bf16/fp16 on CUDA -> (packed data, scales), uint8 (into ``out`` when given)."""
    rows, length = x2d.shape
    data, scales = out if out is not None else (
        torch.empty(rows, fmt.packed_bytes(length), dtype=torch.uint8, device=x2d.device),
        torch.empty(rows, -(-length // block_size), dtype=torch.uint8, device=x2d.device))
    _check_args(rows, length, block_size, x=x2d, data=data, scales=scales)
    _quantize(x2d, fmt, block_size, scale_mode, stochastic, seed, data, scales, None, fake=False)
    return data, scales


def dequantize_2d(data: torch.Tensor, scales: torch.Tensor, fmt: MXFormat, block_size: int, length: int,
                  dtype: torch.dtype, out: "torch.Tensor | None" = None):
    """(packed data, scales) on CUDA -> (rows, length) ``dtype`` values (into ``out`` when given)."""
    import numpy as np

    rows = data.shape[0]
    out = torch.empty(rows, length, dtype=dtype, device=data.device) if out is None else out
    _check_args(rows, length, block_size, data=data, scales=scales, out=out)
    if out.dtype != dtype or tuple(out.shape) != (rows, length):
        raise ValueError(f"out must be a ({rows}, {length}) {dtype} tensor, got {tuple(out.shape)} {out.dtype}")
    if tuple(data.shape) != (rows, fmt.packed_bytes(length)) or tuple(scales.shape) != (rows, -(-length // block_size)):
        raise ValueError(f"data / scales have shapes {tuple(data.shape)} / {tuple(scales.shape)}, expected "
                         f"({rows}, {fmt.packed_bytes(length)}) / ({rows}, {-(-length // block_size)})")
    units, cpr, row_bytes, log2_lanes = _geometry(rows, length, block_size, fmt.bits)
    if units == 0:
        return out
    flat = length % block_size == 0 and _aligned(out, 16) and _aligned(
        data, 16 if fmt.bits == 8 else 8 if fmt.bits == 4 else 4)
    _launch(data.device, fmt, dtype, entry_name("dequantize", fmt, dtype, flat=flat), units,
            (data.data_ptr(), scales.data_ptr(), out.data_ptr(), np.int64(length), np.int64(units), np.int64(cpr),
             np.int64(row_bytes), np.int32(log2_lanes)))
    return out


def fake_quantize_2d(x2d: torch.Tensor, fmt: MXFormat, block_size: int, scale_mode: str = "floor",
                     stochastic: bool = False, seed: int = 0, out: "torch.Tensor | None" = None):
    """Quantize then dequantize in one pass, in x2d's dtype (into ``out`` when given)."""
    rows, length = x2d.shape
    out = torch.empty_like(x2d) if out is None else out
    _check_args(rows, length, block_size, x=x2d, out=out)
    if out.dtype != x2d.dtype or out.shape != x2d.shape:
        raise ValueError(f"out must be a {tuple(x2d.shape)} {x2d.dtype} tensor, got {tuple(out.shape)} {out.dtype}")
    _quantize(x2d, fmt, block_size, scale_mode, stochastic, seed, None, None, out, fake=True)
    return out


__all__ = ["CtypesNVRTC", "CupyNVRTC", "NVRTCError", "OPTIONS", "compile_program", "compile_ptx_with_libnvrtc",
           "dequantize_2d", "entry_name", "entry_names", "fake_quantize_2d", "find_libnvrtc", "kernel_dir",
           "program_source", "quantize_2d", "rtc_source"]
