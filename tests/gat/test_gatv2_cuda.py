"""The GATv2 CUDA C++ kernels against the reference on a GPU (skipped without one): dtypes, index types, edge
features, dropout, determinism, the per-head channel limit."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops._backend import native_module

from .test_gatv2_cpu import compare
from .test_gatv2_reference import make
from .v2_inputs import run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or native_module("_C_cuda") is None,
                                reason="needs a CUDA device and slimops._C_cuda")


def cuda(args):
    return tuple(t.cuda() for t in args)


@pytest.mark.parametrize("kind", ["uniform", "powerlaw", "isolated", "duplicates"])
@pytest.mark.parametrize("heads,channels,edge_dim", [(1, 1, 0), (3, 7, 2), (2, 33, 5), (4, 64, 0), (1, 256, 3)])
def test_native_cuda_matches_reference(kind, heads, channels, edge_dim, backend_reset):
    args = make(kind, 300, 257, heads, channels, edge_dim, deg=9, seed=heads * channels, scale=2.0)
    compare(cuda(args), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_native_cuda_dtypes_and_dropout(dtype, index_dtype, p, backend_reset):
    args = make("powerlaw", 611, 600, 4, 9, 3, deg=12, seed=1, dtype=dtype, index_dtype=index_dtype)
    compare(cuda(args), dtype, p=p, seed=2**40 + 17, offset=3)


@pytest.mark.parametrize("backend", ["native", "triton"])
def test_cuda_deterministic(backend, backend_reset):
    args = cuda(make("powerlaw", 3000, 3000, 4, 32, 4, deg=20, seed=5))
    a, b = run(backend, args, p=0.3, seed=9), run(backend, args, p=0.3, seed=9)
    assert all(torch.equal(x, y) for x, y in zip([a[0], a[1], *a[2]], [b[0], b[1], *b[2]]))


def test_channels_limit_is_a_clear_error(backend_reset):
    args = cuda(make("uniform", 10, 10, 1, 257, 0, deg=2))
    with slimops.use_backend("native"), pytest.raises(ValueError, match="channels per head must be <= 256"):
        torch.ops.slimops.gatv2_forward(*args, 0.2, 0.0, 0, 0)
