"""The GATv2 Triton kernels against the reference, in the interpreter on CPU (small graphs) or on a GPU."""

from __future__ import annotations

import pytest
import torch

from slimops._backend import triton_available, triton_interpret

from .test_gatv2_cpu import compare
from .test_gatv2_reference import make

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = pytest.mark.skipif(not triton_available() or (DEVICE == "cpu" and not triton_interpret()),
                                reason="triton missing (or no GPU and TRITON_INTERPRET unset)")


@pytest.mark.parametrize("kind,n_src,n_dst,heads,channels,edge_dim,dtype,index_dtype,p", [
    ("uniform", 13, 11, 2, 5, 0, torch.float32, torch.int64, 0.0),
    ("powerlaw", 17, 17, 1, 3, 3, torch.float32, torch.int32, 0.0),   # rows longer than BLOCK_E
    ("isolated", 12, 9, 2, 4, 2, torch.bfloat16, torch.int64, 0.0),
    ("duplicates", 10, 10, 3, 2, 1, torch.float16, torch.int32, 0.4),
    ("selfloops", 9, 9, 2, 8, 0, torch.float32, torch.int64, 0.5),
])
def test_triton_matches_reference(kind, n_src, n_dst, heads, channels, edge_dim, dtype, index_dtype, p,
                                  backend_reset):
    args = make(kind, n_src, n_dst, heads, channels, edge_dim, deg=4 if kind != "powerlaw" else 6, seed=1,
                dtype=dtype, scale=2.0, index_dtype=index_dtype)
    compare(tuple(t.to(DEVICE) for t in args), dtype, p=p, seed=2**33 + 5, offset=7, backend="triton")
