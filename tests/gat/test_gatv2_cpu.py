"""The GATv2 C++ CPU kernels against the reference: graphs, sizes, edge features, dtypes, index types, dropout,
determinism, every SIMD build."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from slimops._backend import native_module
from slimops.testing import skip_if_default_isa

from .graphs import close
from .test_gatv2_reference import make
from .v2_inputs import GRADS, TOL, run

pytestmark = pytest.mark.skipif(native_module("_C") is None, reason="slimops._C not built")


def compare(args, dtype, p=0.0, seed=0, offset=0, slope=0.2, backend="native"):
    (fa, fr), (ga, gr) = TOL[dtype]
    n_out, n_lse, n_grads = run(backend, args, p=p, seed=seed, offset=offset, slope=slope)
    r_out, r_lse, r_grads = run("reference", args, p=p, seed=seed, offset=offset, slope=slope)
    close(n_out, r_out, fa, fr, "out")
    close(n_lse, r_lse, 1e-5, 1e-5, "lse")
    for name, a, b, t in zip(GRADS, n_grads, r_grads, args):
        assert a.dtype == b.dtype == dtype and a.shape == t.shape, name
        scale = max(1.0, b.float().abs().amax().item() if b.numel() else 0.0)  # grad_att, grad_w_edge: sums
        close(a, b, ga * scale, gr, name)


@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "selfloops", "duplicates"])
@pytest.mark.parametrize("heads,channels,edge_dim", [(1, 1, 0), (3, 7, 2), (2, 33, 5), (4, 16, 0)])
def test_native_matches_reference(kind, heads, channels, edge_dim, backend_reset):
    compare(make(kind, 53, 47, heads, channels, edge_dim, deg=6.3, seed=heads * channels, scale=2.0), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_dtypes(dtype, index_dtype, backend_reset):
    compare(make("powerlaw", 61, 61, 4, 9, 3, deg=5, seed=1, dtype=dtype, index_dtype=index_dtype), dtype)


@pytest.mark.parametrize("p", [0.1, 0.6])
@pytest.mark.parametrize("dtype,edge_dim", [(torch.float32, 0), (torch.bfloat16, 4)])
def test_dropout_same_mask_as_reference(p, dtype, edge_dim, backend_reset):
    compare(make("uniform", 40, 40, 3, 5, edge_dim, deg=8, seed=2, dtype=dtype), dtype, p=p, seed=2**40 + 17, offset=3)


def test_dropout_offset_beyond_2_32(backend_reset):
    compare(make("uniform", 20, 20, 2, 3, 1, deg=4, seed=2), torch.float32, p=0.5, seed=5, offset=2**32 - 7)


def test_negative_slope_and_large_logits(backend_reset):
    """Scores of hundreds: the online softmax rescales its accumulator many times."""
    compare(make("duplicates", 30, 30, 2, 4, 2, deg=5, seed=4, scale=60.0), torch.float32, slope=0.01)


def test_deterministic_across_thread_counts(backend_reset):
    args = make("powerlaw", 300, 300, 4, 8, 3, deg=12, seed=5)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out, lse, grads = run("native", args, p=0.3, seed=9)
            results.append([out, lse, *grads])
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def test_non_contiguous_inputs(backend_reset):
    xl, xr, att, ea, w, indptr, indices = make("uniform", 20, 18, 6, 4, 4, deg=4, seed=3)
    w_half = w.view(6, 4, 4)[::2].reshape(12, 4)[:, ::2]  # heads 0, 2, 4; edge features 0, 2
    args = (xl[:, ::2], xr[:, ::2], att[::2], ea[:, ::2], w_half, indptr, indices)
    assert not any(t.is_contiguous() for t in args[:5])
    compare(args, torch.float32)


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_lower_simd_builds(isa):
    """The same checks on the AVX2 and SSE2-baseline builds (a subprocess with SLIMOPS_CPU_ISA)."""
    skip_if_default_isa(isa)
    code = ("import torch, slimops; from slimops._backend import native_module; "
            f"assert native_module('_C').cpu_features()['isa'] == '{isa}'; "
            "from tests.gat.test_gatv2_cpu import compare; from tests.gat.test_gatv2_reference import make; "
            "compare(make('powerlaw', 41, 37, 3, 9, 2, deg=6, seed=1), torch.float32, p=0.3, seed=4); "
            "compare(make('uniform', 23, 29, 2, 5, 0, deg=4, seed=2, dtype=torch.float16), torch.float16)")
    env = {**__import__("os").environ, "SLIMOPS_CPU_ISA": isa}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
