"""mx_convert against its reference on every CPU path, bit for bit: a fixed grid and hypothesis fuzzing.

The CPU kernel has four paths (csrc/slicescale/): AVX-512 VBMI tables, AVX-512 without VBMI and AVX2
(MXINT arithmetic, MXFP register walks), and the baseline element math. In-process the tests run the
best path of this CPU; ``test_lower_paths`` runs this file again in a subprocess per lower path
(SLIMOPS_CPU_ISA=avx2 / baseline, SLIMOPS_CPU_VBMI=0) and checks that the path took effect. The
Triton kernel runs in the interpreter on the small fuzz cases.

Fuzzing (hypothesis): every pair (and the identity), both roundings, block sizes 16/32/64, 1-3
dimensions with any axis (non-contiguous inputs), empty tensors, and two kinds of anchors: random
packed bytes with the E8M0 ends over-represented (every code: FP8 NaN/Inf codes, MXINT's -2^(b-1)),
and float data with edge values (NaN, +-Inf, +-0, fp32 subnormals, the format's max and beyond,
all-zero blocks) quantized with FLOOR or RCEIL scales. Output bytes, scales and the conversion
report's counts are compared, with out= buffers in half of the cases. CI runs ``CI_EXAMPLES`` cases;
``SLIMOPS_FUZZ_EXAMPLES=10000`` (with ``--hypothesis-show-statistics``) is the long run.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slimops
from slimops._backend import native_module, triton_available
from slimops.mx.formats import BLOCK_SIZES, FORMATS, get_format
from slimops.slicescale import reference as ssref
from slimops.testing import skip_if_default_isa

from .test_convert_backends import ALL_PAIRS, random_anchor, reference_out, run_out
from .test_convert_reference import assert_same

NATIVE = native_module("_C") is not None and hasattr(native_module("_C"), "mx_convert_path")
needs_native = pytest.mark.skipif(not NATIVE, reason="slimops._C (with mx_convert) not built")
CI_EXAMPLES = 60
EXAMPLES = int(os.environ.get("SLIMOPS_FUZZ_EXAMPLES", "0")) or CI_EXAMPLES
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
TRITON_MAX_BLOCKS = 256  # Triton in the interpreter only on cases this small


def assert_outputs(got, want, what: str) -> None:
    for g, w, part in zip(got, want, ("data", "scales", "counts")):
        assert_same(g.cpu(), w, f"{what}: {part}")


@needs_native
@pytest.mark.parametrize("src,dst", ALL_PAIRS)
def test_every_pair_block_size_and_rounding(src, dst):
    """The fixed grid: rows long enough for a full group of 64 blocks of the fast path and a short
    chunk after it, a partial last block; random bytes (every path of the kernel: NaN and clamped
    scales, NaN/Inf codes) and a quantized anchor (mostly the fast path); data, scales and counts."""
    for bs, rounding in itertools.product(BLOCK_SIZES, ssref.ROUNDINGS):
        length = 64 * bs + 3 * bs + 5
        data, scales = random_anchor(src, 3, length, bs, seed=bs)
        a = slimops.mx.quantize(torch.randn(3, length, generator=torch.Generator().manual_seed(bs)) * 3, src, bs)
        for d, s in ((data, scales), (a.data, a.scales)):
            want = reference_out(d, s, src, dst, bs, -1, length, rounding)
            assert_outputs(run_out("native", d, s, src, dst, bs, -1, length, rounding), want,
                           f"{src}->{dst} block {bs} {rounding}")


@needs_native
@pytest.mark.parametrize("src,dst", ALL_PAIRS)
def test_writes_stop_at_the_buffer_end(src, dst):
    """mx_convert_out into the front of a larger buffer: the bytes after it keep their value (the AVX2 6-bit
    pack writes 4 bytes past its 24 where the next chunk of its group writes after it, never at a group's
    end), for rows that end in a full group, a short chunk or a partial block; the data equal the reference's."""
    for bs in BLOCK_SIZES:
        for rows, length in ((1, 64 * bs), (2, 8 * bs), (1, 64 * bs + bs), (3, 5 * bs + 3)):
            a = slimops.mx.quantize(torch.randn(rows, length, generator=torch.Generator().manual_seed(length)), src, bs)
            want = reference_out(a.data, a.scales, src, dst, bs, -1, length)
            n = get_format(dst).packed_bytes(length) * rows
            big = torch.full((n + 64,), 0xA5, dtype=torch.uint8)
            out = (big[:n].view(rows, -1), torch.empty_like(a.scales))
            what = f"{src}->{dst} block {bs} {rows}x{length}"
            assert_outputs(run_out("native", a.data, a.scales, src, dst, bs, -1, length, out=out), want, what)
            assert bool((big[n:] == 0xA5).all()), what + f": bytes written past the buffer: {big[n:n + 8].tolist()}"


# ----------------------------------------------------------------------------- hypothesis


EDGE = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e-45, -1e-45, 1.17e-38, 2.0**-127, 2.0**-140,
        3.4e38, -3.4e38, 1.0, -1.0]


@st.composite
def convert_case(draw):
    """(src, dst, rounding, block_size, axis, data, scales, length)."""
    src, dst = draw(st.sampled_from(ALL_PAIRS + [(f, f) for f in FORMATS]))
    rounding = draw(st.sampled_from(ssref.ROUNDINGS))
    bs = draw(st.sampled_from(BLOCK_SIZES))
    ndim = draw(st.integers(1, 3))
    axis = draw(st.integers(-ndim, ndim - 1))
    length = draw(st.one_of(st.integers(0, 3 * bs + 7), st.integers(64 * bs - 20, 66 * bs + 20)))
    others = [draw(st.integers(0, 4)) if draw(st.integers(0, 9)) else 0 for _ in range(ndim - 1)]
    rows = 1
    for o in others:
        rows *= o
    seed = draw(st.integers(0, 2**31 - 1))
    f = get_format(src)
    if draw(st.booleans()):  # random packed bytes, every code
        data, scales = random_anchor(src, rows, length, bs, seed)
    else:  # float data with edge values, quantized (FLOOR or RCEIL)
        g = torch.Generator().manual_seed(seed)
        e0 = draw(st.integers(-140, 120))
        x = torch.randn(rows, length, generator=g) * 2.0 ** float(e0)
        if rows * length:
            n_edge = draw(st.integers(0, 8))
            idx = torch.randint(0, rows * length, (n_edge,), generator=g)
            vals = torch.tensor([draw(st.sampled_from(EDGE + [f.max_value, -f.max_value * 1.5]))
                                 for _ in range(n_edge)])
            x.view(-1)[idx] = vals
            if draw(st.booleans()):  # all-zero blocks
                x.view(rows, -1)[:, : min(length, 2 * bs)] = 0.0
        mode = draw(st.sampled_from(["floor", "rceil"]))
        t = slimops.mx.quantize(x, src, bs, scale_mode=mode)
        data, scales = t.data, t.scales
    # (rows, bytes) -> the caller's layout: rows split over the other dimensions, the packed axis at `axis`
    shape_d = [*others, data.shape[1]]
    shape_s = [*others, scales.shape[1]]
    data = data.reshape(shape_d).movedim(-1, axis)
    scales = scales.reshape(shape_s).movedim(-1, axis)
    return src, dst, rounding, bs, axis % ndim, data, scales, length


def _out_like(data, scales, dst, axis, length, strided):
    f = get_format(dst)
    shape = list(data.shape)
    shape[axis] = f.packed_bytes(length)
    if not strided:
        return torch.empty(shape, dtype=torch.uint8), torch.empty(scales.shape, dtype=torch.uint8)
    return (torch.empty(shape[::-1], dtype=torch.uint8).permute(*range(len(shape) - 1, -1, -1)),
            torch.empty(list(scales.shape)[::-1], dtype=torch.uint8).permute(*range(scales.dim() - 1, -1, -1)))


@needs_native
@FUZZ
@given(convert_case(), st.sampled_from(["op", "out", "out-strided"]))
def test_fuzz_against_reference(case, how):
    src, dst, rounding, bs, axis, data, scales, length = case
    want = reference_out(data, scales, src, dst, bs, axis, length, rounding)
    backends = ["native"]
    if triton_available() and scales.numel() <= TRITON_MAX_BLOCKS and not os.environ.get("SLIMOPS_TEST_EXPECT_PATH"):
        backends.append("triton")
    for backend in backends:
        what = f"{backend} {src}->{dst} block {bs} axis {axis} {rounding} {tuple(data.shape)} {how}"
        if how == "op":
            with slimops.use_backend(backend):
                got = torch.ops.slimops.mx_convert(data, scales, src, dst, bs, axis, length, rounding)
            assert_same(got[0], want[0], what + ": data")
            assert_same(got[1], want[1], what + ": scales")
        else:
            out = _out_like(data, scales, dst, axis, length, how == "out-strided")
            assert_outputs(run_out(backend, data, scales, src, dst, bs, axis, length, rounding, out=out), want, what)


# ----------------------------------------------------------------------------- the lower paths


@needs_native
def test_expected_path_is_active():
    """Under test_lower_paths' subprocess the kernel runs the path asked for; otherwise the best one here."""
    path = native_module("_C").mx_convert_path()
    want = os.environ.get("SLIMOPS_TEST_EXPECT_PATH")
    if want:
        assert path == want
    else:
        isa = slimops.info()["cpu_features"]["isa"]
        assert path.split("-")[0] == isa, (path, isa)


def _cpu_has(flag: str) -> bool:
    try:
        return flag in pathlib.Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@needs_native
@pytest.mark.parametrize("path,env", [("avx2", {"SLIMOPS_CPU_ISA": "avx2"}), ("baseline", {"SLIMOPS_CPU_ISA": "baseline"}),
                                      ("avx512", {"SLIMOPS_CPU_VBMI": "0"})])
def test_lower_paths(path, env):
    """This file's tests again on a lower path, in a subprocess (the path is chosen once per process)."""
    if os.environ.get("SLIMOPS_TEST_EXPECT_PATH"):
        pytest.skip("already running on a chosen path")
    detected = slimops.info()["cpu_features"].get("isa_detected")
    if path == "avx2" and detected not in ("avx2", "avx512"):
        pytest.skip("this CPU has no AVX2")
    if path == "avx512" and not (detected == "avx512" and _cpu_has("avx512vbmi")):
        pytest.skip("AVX-512 without VBMI is the default path here (or there is no AVX-512)")
    if path != "avx512":
        skip_if_default_isa(path)
    root = pathlib.Path(__file__).resolve().parents[2]
    full_env = dict(os.environ, SLIMOPS_TEST_EXPECT_PATH=path, **env)
    full_env.setdefault("TRITON_INTERPRET", "1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__,
                        "-k", "not lower_paths"], cwd=root, env=full_env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout, r.stdout[-500:]
