"""The rowq family's benchmark suite: ``slimops bench rowq``.

Times ``rowq_quantize`` (fp32 rows -> packed codes + (min, scale)) and
``rowq_dequantize`` (back to fp32) on a halo-like matrix, 131072 rows of 128
features on the CPU (64 MiB, beyond the last-level cache; 1M rows on CUDA), at 8,
4 and 2 bits, stochastic rounding. Providers, interleaved round by round:

* ``slimops-native``: the C++ kernels on CPU, CUDA C++ on CUDA; ``slimops-triton``: Triton (CUDA);
* ``reference-eager``: the same op on the pure-PyTorch reference (the oracle: bit-equal outputs);
* ``reference-compiled``: that reference under ``torch.compile``.

Bytes moved (GB/s, fraction of the copy roofline): the fp32 rows, the packed
codes and the 8 bytes of (min, scale) a row, read or written once.
"""

from __future__ import annotations

import argparse

import torch

from ..benchmarks.runner import Case, CompileBudget, Skip, Suite
from . import reference, schemas

OPS = ("rowq_quantize", "rowq_dequantize")
BITS = (8, 4, 2)
SHAPES = {("cpu", False): (131072, 128), ("cuda", False): (1 << 20, 128), ("cpu", True): (2048, 64),
          ("cuda", True): (65536, 128)}
PROVIDERS = ("reference-eager", "reference-compiled", "slimops-native", "slimops-triton")
BACKENDS = {"cpu": {"slimops-native": "native"}, "cuda": {"slimops-native": "native", "slimops-triton": "triton"}}
SEED = 1234


class RowqSuite(Suite):
    name = "rowq"
    title = "slimops per-row integer codec (rowq_quantize / rowq_dequantize)"
    providers = PROVIDERS
    oracle = "reference-eager"
    speedups = {"speedup_vs_reference": "reference-eager", "speedup_vs_compiled": "reference-compiled"}
    case_columns = ("op", "bits", "shape")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("rowq suite")
        g.add_argument("--rowq-bits", type=int, nargs="+", help=f"code widths, from {BITS} (default: all)")

    def check_arguments(self, args: argparse.Namespace) -> None:
        bits = getattr(args, "rowq_bits", None)
        if bits and set(bits) - set(BITS):
            raise SystemExit(f"slimops: bench rowq: --rowq-bits: expected from {list(BITS)}, got {bits}")

    def select_op(self, args: argparse.Namespace, op: str) -> None:
        if op not in OPS:
            raise SystemExit(f"slimops: unknown rowq op {op!r}; expected one of {list(OPS)}")
        self._only = op

    def cases(self, args: argparse.Namespace, device: str) -> list:
        shape = SHAPES[(device, bool(args.quick))]
        ops = [getattr(self, "_only", None)] if getattr(self, "_only", None) else OPS
        return [Case(device, {"op": op, "bits": b, "shape": shape}) for op in ops
                for b in (getattr(args, "rowq_bits", None) or BITS)]

    def providers_for(self, device: str) -> list:
        return [p for p in PROVIDERS if not p.startswith("slimops-") or p in BACKENDS[device]]

    def inputs(self, case: Case) -> dict:
        g = torch.Generator(device=case.device).manual_seed(0)
        x = torch.randn(case.shape, generator=g, device=case.device)
        data, params = reference.quantize(x, case.bits, True, SEED)
        return {"x": x, "data": data, "params": params}

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        import slimops

        x, data, params, bits, length = inputs["x"], inputs["data"], inputs["params"], case.bits, case.shape[1]
        if case.op == "rowq_quantize":
            def ref():
                return reference.quantize(x, bits, True, SEED)

            def op():
                return torch.ops.slimops.rowq_quantize(x, bits, True, SEED)
        else:
            def ref():
                return reference.dequantize(data, params, bits, length, torch.float32)

            def op():
                return torch.ops.slimops.rowq_dequantize(data, params, bits, length, torch.float32)

        if provider == "reference-eager":
            return ref, ""
        if provider == "reference-compiled":
            compiled, secs = budget.compile(ref, (), case.device)
            return compiled, f"torch.compile of the reference ({secs:.0f} s to compile)"
        backend = BACKENDS[case.device].get(provider)
        if backend is None:
            raise Skip(f"{provider} does not run on {case.device}")
        from .._backend import resolve

        with slimops.use_backend(backend):
            if resolve("rowq", case.op, case.device) != backend:
                raise Skip(f"backend {backend!r} is not available on {case.device}")

        def fn():
            with slimops.use_backend(backend):
                return op()

        return fn, ""

    def work(self, case: Case) -> int:
        rows, length = case.shape
        return rows * length * 4 + rows * schemas.packed_row_bytes(length, case.bits) + rows * 8


SUITE = RowqSuite()
