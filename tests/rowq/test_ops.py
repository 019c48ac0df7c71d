"""The rowq ops' contract: determinism, packing, constant and NaN rows, seeds, bad arguments, opcheck."""

from __future__ import annotations

import pytest
import torch

import slimops
from slimops.rowq import reference as ref
from slimops.testing import cpu_backends


def test_rowq_deterministic_for_seed_and_nearest_mode():
    x = torch.randn(9, 33)
    a = torch.ops.slimops.rowq_quantize(x, 4, True, 3)
    b = torch.ops.slimops.rowq_quantize(x, 4, True, 3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    d, p = torch.ops.slimops.rowq_quantize(x, 8, False, 0)
    y = torch.ops.slimops.rowq_dequantize(d, p, 8, 33, torch.float32)
    assert ((y - x).abs() <= p[:, 1:2] / 2 * (1 + 1e-5) + 1e-6).all()


def test_rowq_constant_rows_and_packing():
    x = torch.full((3, 5), 2.5)
    d, p = torch.ops.slimops.rowq_quantize(x, 2, True, 0)
    assert d.shape == (3, 2) and torch.equal(p[:, 0], torch.full((3,), 2.5)) and (p[:, 1] == 0).all()
    assert torch.equal(torch.ops.slimops.rowq_dequantize(d, p, 2, 5, torch.float32), x)
    # codes 0..3 in one row of four 2-bit codes: 0b11100100 little-endian
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    d, p = torch.ops.slimops.rowq_quantize(x, 2, False, 0)
    assert d.tolist() == [[0b11100100]]


def test_rowq_bad_arguments():
    with pytest.raises(ValueError, match="bits must be one of"):
        torch.ops.slimops.rowq_quantize(torch.randn(2, 4), 3, True, 0)
    with pytest.raises(ValueError, match="must be 2-d"):
        torch.ops.slimops.rowq_quantize(torch.randn(4), 4, True, 0)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        torch.ops.slimops.rowq_quantize(torch.ones(2, 4, dtype=torch.int32), 4, True, 0)
    d, p = torch.ops.slimops.rowq_quantize(torch.randn(2, 8), 4, True, 0)
    with pytest.raises(ValueError, match="expected \\(rows, 5\\)"):
        torch.ops.slimops.rowq_dequantize(d, p, 4, 9, torch.float32)
    with pytest.raises(ValueError, match="params has shape"):
        torch.ops.slimops.rowq_dequantize(d, p[:1], 4, 8, torch.float32)


def test_rowq_opcheck():
    x = torch.randn(6, 19)
    torch.library.opcheck(torch.ops.slimops.rowq_quantize, (x, 4, True, 1))
    d, p = torch.ops.slimops.rowq_quantize(x, 4, True, 1)
    torch.library.opcheck(torch.ops.slimops.rowq_dequantize, (d, p, 4, 19, torch.float32))


def _backends():
    """The kernel backends that run rowq on CPU tensors here (Triton through its interpreter), each skipped with
    the reason where it cannot run; the reference is their oracle."""
    from slimops._backend import triton_available, triton_interpret

    native = [p for p in cpu_backends() if p.values[0] == "native"]
    return native + [pytest.param("triton", marks=pytest.mark.skipif(
        not (triton_available() and triton_interpret()), reason="needs triton and TRITON_INTERPRET=1"))]


def _same(backend, x, bits, stochastic, seed):
    with slimops.use_backend(backend):
        d, p = slimops.rowq.quantize(x, bits, stochastic, seed)
        y = slimops.rowq.dequantize(d, p, bits, x.shape[1])
    rd, rp = ref.quantize(x, bits, stochastic, seed)
    ry = ref.dequantize(rd, rp, bits, x.shape[1], torch.float32)
    assert torch.equal(p.view(torch.int32), rp.view(torch.int32)), (backend, p, rp)  # NaN bits too
    assert torch.equal(d, rd), (backend, d, rd)
    assert torch.equal(y.view(torch.int32), ry.view(torch.int32)), backend


@pytest.mark.parametrize("backend", ["reference", *_backends()])
def test_rows_with_nan_anywhere_get_nan_parameters(backend, backend_reset):
    """A NaN in any position makes the row's (min, scale) NaN, as torch.amin / amax do (the C++ kernel kept only
    a NaN in the first element; CUDA's fminf / fmaxf dropped every NaN); its codes are 0."""
    nan, inf = float("nan"), float("inf")
    x = torch.tensor([[nan, 1, 2, 3], [1, nan, 2, 3], [1, 2, 3, nan], [nan] * 4, [1, 2, 3, 4], [-inf, 0, 1, 2],
                      [0, 1, inf, 2], [-inf, inf, 0, 0]])
    with slimops.use_backend(backend):
        d, p = slimops.rowq.quantize(x, 4, False, 0)
    assert p[:4].isnan().all() and not p[4].isnan().any()
    assert (d[:4] == 0).all()
    if backend != "reference":
        for stochastic in (False, True):
            _same(backend, x, 4, stochastic, 7)


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("seed", [5, 2**32 + 5, -1, -2**63, 2**63 - 1, 2**40 + 12345])
def test_every_64_bit_seed_gives_the_reference_bits(backend, seed, backend_reset):
    """The kernels took ``seed & 0xFFFFFFFF``; the reference folds all 64 bits (``lo ^ mix32(hi)``, as MX)."""
    x = torch.randn(7, 45, generator=torch.Generator().manual_seed(3))
    _same(backend, x, 2, True, seed)


def test_seeds_differing_only_in_their_high_bits_draw_different_codes():
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(slimops.rowq.quantize(x, 2, True, 5)[0], slimops.rowq.quantize(x, 2, True, 2**32 + 5)[0])
