"""The MX family's benchmark suite: slimops' kernels side by side with the reference and torchao.

``slimops bench mx`` (the common runner, :mod:`slimops.benchmarks.runner`).
Providers, all timed in one run on the same input, interleaved round by round:

* ``slimops-native``: the C++ kernels on CPU (``slimops._C``), the CUDA C++
  kernels on CUDA (``slimops._C_cuda``), through the ``torch.ops.slimops`` ops.
* ``slimops-triton`` (CUDA only): the Triton kernels, through the same ops.
* ``reference-eager``: the same ops under ``slimops.use_backend("reference")``,
  i.e. ``slimops/mx/reference.py`` run eagerly (the oracle of ``= ref``).
* ``reference-compile``: the reference's ``quantize_2d`` / ``dequantize_2d`` /
  ``fake_quantize_2d`` wrapped in ``torch.compile`` (compiled once per case;
  skipped with the reason when compiling fails or the compile budget is spent).
* ``torchao``: ``torchao.prototype.mx_formats.mx_tensor.to_mx`` (and ``to_dtype``
  for dequantize), FP formats only, fp32/bf16 input, last dim divisible by the block.

Bytes moved (for GB/s) are the algorithmic ones, the same for every provider:
quantize reads the input and writes the packed elements and the scales;
dequantize reads those and writes the output; fake_quantize reads and writes
one tensor of the input's dtype.
"""

from __future__ import annotations

import argparse
import math

import torch

from ..benchmarks.runner import Case, CompileBudget, Skip, Suite, first_line, quiet_peer
from .formats import get_format

OPS = ("quantize", "dequantize", "fake_quantize")
DEFAULT_FMTS = {"quantize": ("mxfp8", "mxint8", "mxfp4"), "dequantize": ("mxfp8",), "fake_quantize": ("mxfp8",)}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_DTYPES = ("float32", "bfloat16")
SHAPES = {("cpu", False): (4096, 4096), ("cuda", False): (16384, 16384),
          ("cpu", True): (256, 1024), ("cuda", True): (2048, 4096)}
BLOCK = 32
# reference-eager runs first: its output is the oracle of the matches_reference column.
PROVIDERS = ("reference-eager", "slimops-native", "slimops-triton", "reference-compile", "torchao")
SLIMOPS_BACKENDS = {"cpu": {"slimops-native": "native"},
                    "cuda": {"slimops-triton": "triton", "slimops-native": "native"}}
_TORCHAO_ELEM = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp6_e2m3": "fp6_e2m3",
                 "mxfp6_e3m2": "fp6_e3m2", "mxfp4_e2m1": "float4_e2m1fn_x2"}


def bytes_moved(case: Case) -> int:
    rows, length = math.prod(case.shape[:-1]), case.shape[-1]
    elt = DTYPES[case.dtype].itemsize
    n = rows * length
    packed = rows * get_format(case.fmt).packed_bytes(length) + rows * -(-length // BLOCK)
    if case.op in ("quantize", "dequantize"):
        return n * elt + packed
    return 2 * n * elt


def mx_case(device: str, op: str, fmt: str, dtype: str, shape: tuple) -> Case:
    return Case(device, {"op": op, "fmt": fmt, "dtype": dtype, "shape": tuple(shape)})


def make_inputs(case: Case, seed: int = 0) -> dict:
    """The input tensor (and, for dequantize, slimops' MXTensor of it) on the case's device."""
    import slimops

    g = torch.Generator(device=case.device).manual_seed(seed)
    x = torch.randn(case.shape, generator=g, dtype=torch.float32, device=case.device).to(DTYPES[case.dtype])
    out = {"x": x}
    if case.op == "dequantize":
        try:
            out["mx"] = slimops.mx.quantize(x, case.fmt, BLOCK)
        except Exception:  # the active kernel is missing or broken: the reference always works
            with slimops.use_backend("reference"):
                out["mx"] = slimops.mx.quantize(x, case.fmt, BLOCK)
    return out


def _slimops_fn(case: Case, backend: str, inputs: dict):
    import slimops
    from .._backend import resolve

    try:
        with slimops.use_backend(backend):
            got = resolve("mx", "mx_" + case.op, case.device, DTYPES[case.dtype])
    except RuntimeError as e:
        raise Skip(str(e)) from None
    if got != backend:
        raise Skip(f"backend {backend!r} is not available on {case.device} (resolves to {got!r})")
    dtype = DTYPES[case.dtype]

    def call(x, mx):
        with slimops.use_backend(backend):
            if case.op == "quantize":
                t = slimops.mx.quantize(x, case.fmt, BLOCK)
                return t.data, t.scales
            if case.op == "dequantize":
                return slimops.mx.dequantize(mx, dtype)
            return slimops.mx.fake_quantize(x, case.fmt, BLOCK)

    # A trial on a tiny input first, so that a backend that cannot run this case is a skip, not an error.
    tiny = make_inputs(Case(case.device, dict(case.params, shape=(4, 64))))
    try:
        call(tiny["x"], tiny.get("mx"))
    except Exception as e:
        raise Skip(f"{backend} kernel failed on a 4x64 trial: {type(e).__name__}: {first_line(e)}") from None
    return lambda: call(inputs["x"], inputs.get("mx")), ""


def _reference_eager_fn(case: Case, inputs: dict):
    import slimops

    dtype = DTYPES[case.dtype]

    def fn():
        with slimops.use_backend("reference"):
            if case.op == "quantize":
                t = slimops.mx.quantize(inputs["x"], case.fmt, BLOCK)
                return t.data, t.scales
            if case.op == "dequantize":
                return slimops.mx.dequantize(inputs["mx"], dtype)
            return slimops.mx.fake_quantize(inputs["x"], case.fmt, BLOCK)

    return fn, ""


def _reference_compile_fn(case: Case, inputs: dict, budget: CompileBudget):
    from . import reference

    if len(case.shape) != 2:
        raise Skip("the compiled reference takes 2-d (rows, L) input")
    f, dtype, length = get_format(case.fmt), DTYPES[case.dtype], case.shape[-1]
    if case.op == "quantize":
        body, args = (lambda x: reference.quantize_2d(x, f, BLOCK)), (inputs["x"],)
    elif case.op == "dequantize":
        mx = inputs["mx"]
        body = lambda d, s: reference.dequantize_2d(d, s, f, BLOCK, length, dtype)  # noqa: E731
        args = (mx.data, mx.scales)
    else:
        body, args = (lambda x: reference.fake_quantize_2d(x, f, BLOCK)), (inputs["x"],)
    compiled, compile_s = budget.compile(body, args, case.device, dynamic=False)
    return (lambda: compiled(*args)), f"compiled in {compile_s:.1f}s"


def _torchao_api():
    try:
        with quiet_peer("torchao"):
            from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
    except Exception as e:
        raise Skip(f"torchao not importable: {type(e).__name__}: {first_line(e)}") from None
    return to_mx, to_dtype


def _torchao_fn(case: Case, inputs: dict):
    f = get_format(case.fmt)
    if f.is_int:
        raise Skip("torchao has no MXINT formats")
    if case.dtype not in ("float32", "bfloat16"):
        raise Skip("torchao's to_mx takes fp32 or bf16 input only")
    if case.shape[-1] % BLOCK:
        raise Skip(f"torchao's to_mx needs the last dim divisible by {BLOCK}")
    to_mx, to_dtype = _torchao_api()
    elem = _TORCHAO_ELEM[f.name]
    elem = getattr(torch, elem, elem)
    x, dtype = inputs["x"], DTYPES[case.dtype]
    if case.op == "quantize":
        def fn():
            scale, data = to_mx(x, elem, BLOCK)
            return data.view(torch.uint8), scale.view(torch.uint8)
    elif case.op == "dequantize":
        scale, data = to_mx(x, elem, BLOCK)

        def fn():
            return to_dtype(data, scale, elem, BLOCK, dtype)
    else:
        def fn():
            scale, data = to_mx(x, elem, BLOCK)
            return to_dtype(data, scale, elem, BLOCK, dtype)
    note = "fp6 stored one per byte (not packed)" if f.bits == 6 else ""
    return fn, note


def build(case: Case, provider: str, inputs: dict, budget: CompileBudget):
    """(callable, note) for ``provider`` on ``case``; raises :class:`Skip` with the reason."""
    if provider.startswith("slimops-"):
        backend = SLIMOPS_BACKENDS[case.device].get(provider)
        if backend is None:
            raise Skip(f"{provider} does not run on {case.device}")
        return _slimops_fn(case, backend, inputs)
    if provider == "reference-eager":
        return _reference_eager_fn(case, inputs)
    if provider == "reference-compile":
        return _reference_compile_fn(case, inputs, budget)
    if provider == "torchao":
        return _torchao_fn(case, inputs)
    raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")


def _split(values):
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def parse_shape(text: "str | None") -> "tuple | None":
    if not text:
        return None
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise SystemExit(f"slimops: --shape must look like 4096x4096, got {text!r}")
    return shape


class MXSuite(Suite):
    name = "mx"
    title = "slimops MX microbenchmarks"
    providers = PROVIDERS
    oracle = "reference-eager"
    speedups = {"speedup_vs_ref_eager": "reference-eager", "speedup_vs_ref_compile": "reference-compile",
                "speedup_vs_torchao": "torchao"}
    case_columns = ("op", "fmt", "dtype", "shape")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("mx suite")
        g.add_argument("--ops", nargs="+", help=f"MX ops to run, from {', '.join(OPS)} (default: all)")
        g.add_argument("--fmts", "--fmt", nargs="+", help="MX formats for every op (default: quantize mxfp8 "
                                                          "mxint8 mxfp4, the others mxfp8)")
        g.add_argument("--dtypes", "--dtype", nargs="+", help="input dtypes (default: float32 bfloat16)")
        g.add_argument("--shape", help="ROWSxCOLS, overrides the size (default 4096x4096 on CPU, 16384x16384 "
                                       "on CUDA)")

    def check_arguments(self, args: argparse.Namespace) -> None:
        for values, allowed, what in ((args.ops, OPS, "--ops"), (args.dtypes, DTYPES, "--dtypes")):
            bad = set(_split(values) or ()) - set(allowed)
            if bad:
                raise SystemExit(f"slimops bench mx: {what}: unknown {sorted(bad)}; expected from {list(allowed)}")
        for fmt in _split(args.fmts) or ():
            try:
                get_format(fmt)
            except ValueError as e:
                raise SystemExit(f"slimops bench mx: --fmts: {e}") from None
        parse_shape(args.shape)

    def select_op(self, args: argparse.Namespace, op: str) -> None:
        """``slimops profile mx_quantize``: the op named after the family."""
        op = op.removeprefix("mx_")
        if op not in OPS:
            raise SystemExit(f"slimops: unknown MX op {op!r}; expected one of {[f'mx_{o}' for o in OPS]}")
        args.ops = [op]

    def cases(self, args: argparse.Namespace, device: str) -> list:
        shape = parse_shape(args.shape) or SHAPES[(device, bool(args.quick))]
        out = []
        for op in _split(args.ops) or OPS:
            for fmt in _split(args.fmts) or DEFAULT_FMTS[op]:
                for dt in _split(args.dtypes) or DEFAULT_DTYPES:
                    out.append(mx_case(device, op, fmt, dt, shape))
        return out

    def providers_for(self, device: str) -> list:
        return [p for p in PROVIDERS if not p.startswith("slimops-") or p in SLIMOPS_BACKENDS[device]]

    def inputs(self, case: Case) -> dict:
        return make_inputs(case)

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        return build(case, provider, inputs, budget)

    def work(self, case: Case) -> int:
        return bytes_moved(case)

    def compare(self, case: Case, provider: str, out, oracle_out):
        if provider == "torchao" and get_format(case.fmt).bits == 6:
            return None  # torchao keeps fp6 one per byte
        return super().compare(case, provider, out, oracle_out)


SUITE = MXSuite()
