"""The MX family's benchmark suite: slimops' kernels side by side with the reference and torchao.

``slimops bench mx`` (the common runner, :mod:`slimops.benchmarks.runner`).
Providers, all timed in one run on the same input, interleaved round by round:

* ``slimops-native``: the C++ kernels on CPU (``slimops._C``), the CUDA C++
  kernels on CUDA (``slimops._C_cuda``), through the ``torch.ops.slimops`` ops.
* ``slimops-triton`` (CUDA only): the Triton kernels, through the same ops.
* ``slimops-nvrtc`` (CUDA only): the same CUDA kernels compiled at first use by NVRTC through
  CuPy (``slimops/mx/nvrtc.py``); skipped with the reason without CuPy.
* ``reference-eager``: the same ops under ``slimops.use_backend("reference")``,
  i.e. ``slimops/mx/reference.py`` run eagerly (the oracle of ``= ref``).
* ``reference-compile``: the reference's ``quantize_2d`` / ``dequantize_2d`` /
  ``fake_quantize_2d`` wrapped in ``torch.compile`` (compiled once per case;
  skipped with the reason when compiling fails or the compile budget is spent).
* ``torchao``: ``torchao.prototype.mx_formats.mx_tensor.to_mx`` (and ``to_dtype``
  for dequantize), FP formats only, fp32/bf16 input, last dim divisible by the block.
* ``torchao-compiled``: the same calls under ``torch.compile`` (torchao's recommended
  path where its hand kernels need Blackwell); where compiling fails (on the CPU,
  inductor's C++ backend has no e8m0 type) the row is skipped with the reason.
* ``slimops-native-baseline`` (CPU, with ``--baseline-build PATH``): the same ops with the C++
  kernels of another build of ``slimops._C`` (a commit before a change, say) swapped in, so that
  before and after are timed in the same interleaved rounds.
* ``alloc-copy``: the allocating roofline ``torch.empty_like(y).copy_(y)`` of the
  op's large tensor ``y`` (quantize and fake_quantize: the input; dequantize: a
  tensor of the output's shape and dtype), with its own bytes (2 * y.nbytes). The
  ``frac_of_alloc_copy`` column is each row's GB/s over this row's.

``--sweep`` times a few cases over sizes 2^16 .. 2^26 elements on the CPU (2^28 on
CUDA), (rows, 1024) each, with the default kernel, ``alloc-copy`` and the torchao
rows, and plots time and fraction of copy against size (log x).

Bytes moved (for GB/s) are the algorithmic ones, the same for every provider:
quantize reads the input and writes the packed elements and the scales;
dequantize reads those and writes the output; fake_quantize reads and writes
one tensor of the input's dtype.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math

import torch

from ..benchmarks import harness
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
PROVIDERS = ("reference-eager", "slimops-native", "slimops-native-baseline", "slimops-nvrtc", "slimops-triton",
             "reference-compile", "torchao", "torchao-compiled", "alloc-copy")
# --sweep: sizes 2^lo .. 2^hi elements per device, the cases and the providers.
SWEEP_LOG2 = {"cpu": (16, 26), "cuda": (16, 28)}
SWEEP_COLS = 1024
SWEEP_CASES = (("quantize", "mxfp8", "bfloat16"), ("quantize", "mxfp8", "float32"),
               ("dequantize", "mxfp8", "bfloat16"), ("fake_quantize", "mxfp8", "bfloat16"))
SWEEP_PROVIDERS = ("slimops-native", "alloc-copy", "torchao", "torchao-compiled")
SLIMOPS_BACKENDS = {"cpu": {"slimops-native": "native"},
                    "cuda": {"slimops-triton": "triton", "slimops-native": "native", "slimops-nvrtc": "nvrtc"}}
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


def _torchao_fn(case: Case, inputs: dict, budget: "CompileBudget | None" = None):
    """torchao's to_mx / to_dtype, eager, or under torch.compile when ``budget`` is given."""
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
        def body(x):
            scale, data = to_mx(x, elem, BLOCK)
            return data.view(torch.uint8), scale.view(torch.uint8)
        args = (x,)
    elif case.op == "dequantize":
        scale, data = to_mx(x, elem, BLOCK)

        def body(data, scale):
            return to_dtype(data, scale, elem, BLOCK, dtype)
        args = (data, scale)
    else:
        def body(x):
            scale, data = to_mx(x, elem, BLOCK)
            return to_dtype(data, scale, elem, BLOCK, dtype)
        args = (x,)
    note = "fp6 stored one per byte (not packed)" if f.bits == 6 else ""
    if budget is None:
        return (lambda: body(*args)), note
    with quiet_peer("torchao"), _quiet_inductor():
        compiled, compile_s = budget.compile(body, args, case.device, dynamic=False)
    return (lambda: compiled(*args)), ", ".join(filter(None, [f"compiled in {compile_s:.1f}s", note]))


@contextlib.contextmanager
def _quiet_inductor():
    """A compile that fails is a skipped row with the reason: keep inductor's own error log (the whole
    failing IR, at CRITICAL) out of the run's output."""
    names = ("torch._inductor", "torch._inductor.scheduler", "torch._dynamo")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def load_build(path: str):
    """A build of ``slimops._C`` at ``path`` (its MX functions), loaded beside the installed one."""
    try:
        lib = harness.native_build(path)
        for name in ("mx_quantize", "mx_dequantize", "mx_fake_quantize"):
            getattr(lib, name)
    except Exception as e:
        raise SystemExit(f"slimops bench mx: --baseline-build: cannot load {path!r} as slimops._C: "
                         f"{type(e).__name__}: {first_line(e)}") from None
    return lib


@contextlib.contextmanager
def _kernels_from(lib):
    """The native CPU ops run the kernels of ``lib`` (another build of slimops._C) inside the block."""
    from . import cpu

    saved = cpu._C
    cpu._C = lambda: lib
    try:
        yield
    finally:
        cpu._C = saved


def _baseline_fn(case: Case, inputs: dict, lib):
    """``slimops-native-baseline``: the ops as ``slimops-native`` calls them, with the kernels of another build."""
    if case.device != "cpu":
        raise Skip("--baseline-build is a CPU module")
    fn, note = _slimops_fn(case, "native", inputs)

    def call():
        with _kernels_from(lib):
            return fn()
    return call, note


def _alloc_target(case: Case, inputs: dict) -> torch.Tensor:
    """The op's large tensor: the input, or for dequantize one of the output's shape and dtype."""
    if case.op == "dequantize":
        return torch.ones(case.shape, dtype=DTYPES[case.dtype], device=case.device)
    return inputs["x"]


def _alloc_copy_fn(case: Case, inputs: dict):
    y = _alloc_target(case, inputs)
    return (lambda: torch.empty_like(y).copy_(y)), "roofline: torch.empty_like(y).copy_(y)"


def alloc_copy_bytes(case: Case) -> int:
    return 2 * math.prod(case.shape) * DTYPES[case.dtype].itemsize


def build(case: Case, provider: str, inputs: dict, budget: CompileBudget, baseline=None):
    """(callable, note) for ``provider`` on ``case``; raises :class:`Skip` with the reason.
    ``baseline``: the module of ``--baseline-build`` (for ``slimops-native-baseline``)."""
    if provider == "slimops-native-baseline":
        if baseline is None:
            raise Skip("no --baseline-build given")
        return _baseline_fn(case, inputs, baseline)
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
    if provider == "torchao-compiled":
        return _torchao_fn(case, inputs, budget)
    if provider == "alloc-copy":
        return _alloc_copy_fn(case, inputs)
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


def parse_sweep(text: str, device: str) -> tuple:
    """``--sweep``'s LO:HI (log2 of the element counts), or the device's default range."""
    if text == "default":
        return SWEEP_LOG2[device]
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        lo = hi = -1
    if not 10 <= lo <= hi <= 34:
        raise SystemExit(f"slimops bench mx: --sweep-range must look like 16:26 (log2 sizes, 10 <= LO <= HI <= 34), "
                         f"got {text!r}")
    return lo, hi


def sweep_cases(args: argparse.Namespace, device: str) -> list:
    lo, hi = parse_sweep(args.sweep_range, device)
    if args.ops or args.fmts or args.dtypes:
        combos = [(op, fmt, dt) for op in _split(args.ops) or OPS for fmt in _split(args.fmts) or DEFAULT_FMTS[op]
                  for dt in _split(args.dtypes) or DEFAULT_DTYPES]
    else:
        combos = SWEEP_CASES
    return [mx_case(device, op, fmt, dt, (max(1, (1 << k) // SWEEP_COLS), min(1 << k, SWEEP_COLS)))
            for op, fmt, dt in combos for k in range(lo, hi + 1)]


def plot_sweep(path, rows: list, meta: dict, title: str):
    """Time and fraction of copy against the element count (log x), one row of panels per (device, case)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def numel(r):
        return math.prod(int(v) for v in str(r["shape"]).split("x"))

    groups = list(dict.fromkeys((r["device"], r["op"], r["fmt"], r["dtype"]) for r in rows))
    fig, axes = plt.subplots(max(len(groups), 1), 2, figsize=(12, 3.6 * max(len(groups), 1)), squeeze=False)
    for (ax_t, ax_f), g in zip(axes, groups):
        grows = [r for r in rows if (r["device"], r["op"], r["fmt"], r["dtype"]) == g and r["time_ms"]]
        for p in dict.fromkeys(r["provider"] for r in grows):
            pr = sorted((r for r in grows if r["provider"] == p), key=numel)
            xs = [numel(r) for r in pr]
            ax_t.plot(xs, [r["time_ms"] for r in pr], marker="o", ms=3, label=p)
            ax_f.plot(xs, [r["frac_of_copy_bw"] or 0 for r in pr], marker="o", ms=3, label=p)
        bw = meta["copy_bw_gb_s"].get(g[0])
        ax_t.set(xscale="log", yscale="log", xlabel="elements", ylabel="time per call, ms (min)",
                 title=f"{title} [{g[0]}] {' '.join(g[1:])}")
        ax_f.set(xscale="log", xlabel="elements", ylabel="GB/s / copy bandwidth" + (f" ({bw:.0f} GB/s)" if bw else ""),
                 title="fraction of copy (bytes read + written)")
        ax_f.axhline(1.0, linestyle="--", color="black", linewidth=1)
        for ax in (ax_t, ax_f):
            ax.set_xscale("log", base=2)
            ax.grid(which="both", alpha=0.3)
        ax_f.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class MXSuite(Suite):
    name = "mx"
    title = "slimops MX microbenchmarks"
    providers = PROVIDERS
    oracle = "reference-eager"
    speedups = {"speedup_vs_ref_eager": "reference-eager", "speedup_vs_ref_compile": "reference-compile",
                "speedup_vs_torchao": "torchao"}
    case_columns = ("op", "fmt", "dtype", "shape")
    extra_columns = ("frac_of_alloc_copy",)
    table_columns = Suite.table_columns + [("frac_of_alloc_copy", "of alloc")]

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("mx suite")
        g.add_argument("--ops", nargs="+", help=f"MX ops to run, from {', '.join(OPS)} (default: all)")
        g.add_argument("--fmts", "--fmt", nargs="+", help="MX formats for every op (default: quantize mxfp8 "
                                                          "mxint8 mxfp4, the others mxfp8)")
        g.add_argument("--dtypes", "--dtype", nargs="+", help="input dtypes (default: float32 bfloat16)")
        g.add_argument("--shape", help="ROWSxCOLS, overrides the size (default 4096x4096 on CPU, 16384x16384 "
                                       "on CUDA)")
        g.add_argument("--sweep", action="store_true",
                       help="size sweep: 2^LO .. 2^HI elements (--sweep-range), (rows, 1024) each, for bf16 "
                            "quantize/dequantize/fake_quantize mxfp8 and fp32 quantize mxfp8 (or the "
                            "--ops/--fmts/--dtypes given), providers " + " ".join(SWEEP_PROVIDERS)
                            + " unless --providers says otherwise")
        g.add_argument("--sweep-range", default="default", metavar="LO:HI",
                       help="log2 sizes of --sweep (default 16:26 on CPU, 16:28 on CUDA)")
        g.add_argument("--baseline-build", metavar="PATH",
                       help="a slimops._C .so built from another commit: adds the provider slimops-native-baseline "
                            "(CPU), timed beside slimops-native in the same rounds")

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
        path = getattr(args, "baseline_build", None)
        self.baseline = load_build(path) if path else None
        if self.baseline is not None:  # the slimops-native row then says how much faster it is than the baseline
            self.speedups = {**type(self).speedups, "speedup_vs_baseline_build": "slimops-native-baseline"}
        if getattr(args, "sweep", None):
            if args.shape:
                raise SystemExit("slimops bench mx: --sweep and --shape exclude each other")
            parse_sweep(args.sweep_range, "cpu")
            if not args.providers:
                args.providers = list(SWEEP_PROVIDERS)

    def select_op(self, args: argparse.Namespace, op: str) -> None:
        """``slimops profile mx_quantize``: the op named after the family."""
        op = op.removeprefix("mx_")
        if op not in OPS:
            raise SystemExit(f"slimops: unknown MX op {op!r}; expected one of {[f'mx_{o}' for o in OPS]}")
        args.ops = [op]

    def cases(self, args: argparse.Namespace, device: str) -> list:
        if getattr(args, "sweep", None):
            return sweep_cases(args, device)
        shape = parse_shape(args.shape) or SHAPES[(device, bool(args.quick))]
        out = []
        for op in _split(args.ops) or OPS:
            for fmt in _split(args.fmts) or DEFAULT_FMTS[op]:
                for dt in _split(args.dtypes) or DEFAULT_DTYPES:
                    out.append(mx_case(device, op, fmt, dt, shape))
        return out

    baseline = None  # the --baseline-build module

    def providers_for(self, device: str) -> list:
        out = [p for p in PROVIDERS if not p.startswith("slimops-") or p in SLIMOPS_BACKENDS[device]]
        if self.baseline is not None and device == "cpu":
            out.insert(out.index("slimops-native") + 1, "slimops-native-baseline")
        return out

    def inputs(self, case: Case) -> dict:
        return make_inputs(case)

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        return build(case, provider, inputs, budget, self.baseline)

    def work(self, case: Case) -> int:
        return bytes_moved(case)

    def work_of(self, case: Case, provider: str, work: int) -> int:
        return alloc_copy_bytes(case) if provider == "alloc-copy" else work

    def finish_rows(self, rows: list, meta: dict) -> None:
        key = lambda r: tuple(r[c] for c in ("device", *self.case_columns, "mode"))  # noqa: E731
        roof = {key(r): r["gb_s"] for r in rows if r["provider"] == "alloc-copy" and r["gb_s"]}
        for r in rows:
            if r["gb_s"] and key(r) in roof:
                r["frac_of_alloc_copy"] = r["gb_s"] / roof[key(r)]

    def compare(self, case: Case, provider: str, out, oracle_out):
        if provider == "alloc-copy":
            return None  # a roofline, not the op
        if provider.startswith("torchao") and get_format(case.fmt).bits == 6:
            return None  # torchao keeps fp6 one per byte
        return super().compare(case, provider, out, oracle_out)

    def plot(self, path, rows: list, meta: dict):
        if meta["options"].get("sweep"):
            return plot_sweep(path, rows, meta, self.title)
        return super().plot(path, rows, meta)


SUITE = MXSuite()
