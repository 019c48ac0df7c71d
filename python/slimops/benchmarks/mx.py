"""MX microbenchmarks: slimops' kernels side by side with the reference and torchao.

Providers (all timed in one run, on the same input):

* ``slimops-native``: the C++ kernels on CPU (``slimops._C``), the CUDA C++
  kernels on CUDA (``slimops._C_cuda``), through the ``torch.ops.slimops`` ops.
* ``slimops-triton`` (CUDA only): the Triton kernels, through the same ops.
* ``reference-eager``: the same ops under ``slimops.use_backend("reference")``,
  i.e. ``slimops/mx/reference.py`` run eagerly.
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
import dataclasses
import gc
import math
import time
from pathlib import Path

import torch

from . import harness

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
COLUMNS = ["device", "op", "fmt", "dtype", "shape", "provider", "status", "time_ms", "q20_ms", "q80_ms",
           "repeats", "gb_s", "frac_of_copy_bw", "peak_mem_mb", "peak_mem_method", "speedup_vs_ref_eager",
           "speedup_vs_ref_compile", "speedup_vs_torchao", "matches_reference", "note"]
COLUMN_DOC = {
    "time_ms": "median time of one call, ms",
    "q20_ms": "20% quantile of the call times, ms", "q80_ms": "80% quantile, ms",
    "repeats": "timed calls (after warmup)",
    "gb_s": "(bytes read + bytes written) / time_ms, GB/s (1e9 bytes)",
    "frac_of_copy_bw": "gb_s / the device's measured dst.copy_(src) bandwidth",
    "peak_mem_mb": "peak memory of one call, MB (1e6 bytes), see peak_mem_method",
    "speedup_vs_ref_eager": "time of reference-eager / time of this provider",
    "speedup_vs_ref_compile": "time of reference-compile / time of this provider",
    "speedup_vs_torchao": "time of torchao / time of this provider",
    "matches_reference": "outputs bit-equal to reference-eager's (None: not comparable or not run)",
}
_TORCHAO_ELEM = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp6_e2m3": "fp6_e2m3",
                 "mxfp6_e3m2": "fp6_e3m2", "mxfp4_e2m1": "float4_e2m1fn_x2"}


class Skip(Exception):
    """A provider that cannot run this case; the message is the reason."""


@dataclasses.dataclass
class Case:
    device: str
    op: str
    fmt: str
    dtype: str
    shape: tuple

    @property
    def label(self) -> str:
        return f"{self.op} {self.fmt} {self.dtype} {'x'.join(map(str, self.shape))}"

    @property
    def format(self):
        from ..mx import get_format

        return get_format(self.fmt)

    def bytes_moved(self) -> int:
        rows, length = math.prod(self.shape[:-1]), self.shape[-1]
        elt = DTYPES[self.dtype].itemsize
        n = rows * length
        packed = rows * self.format.packed_bytes(length) + rows * -(-length // BLOCK)
        if self.op == "quantize":
            return n * elt + packed
        if self.op == "dequantize":
            return packed + n * elt
        return 2 * n * elt


@dataclasses.dataclass
class CompileBudget:
    """Total seconds torch.compile may take over a run; once spent, reference-compile is skipped."""

    total_s: float
    spent_s: float = 0.0
    compiles: int = 0


# ----------------------------------------------------------------------------- providers


def providers_for(device_type: str) -> list:
    return [p for p in PROVIDERS if not p.startswith("slimops-") or p in SLIMOPS_BACKENDS[device_type]]


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
            got = resolve(case.device)
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
    tiny = make_inputs(dataclasses.replace(case, shape=(4, 64)))
    try:
        call(tiny["x"], tiny.get("mx"))
    except Exception as e:
        raise Skip(f"{backend} kernel failed on a 4x64 trial: {type(e).__name__}: {_first_line(e)}") from None
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
    from ..mx import reference

    if budget.spent_s >= budget.total_s:
        raise Skip(f"compile budget of {budget.total_s:.0f}s spent ({budget.compiles} compiles)")
    if len(case.shape) != 2:
        raise Skip("the compiled reference takes 2-d (rows, L) input")
    f, dtype, length = case.format, DTYPES[case.dtype], case.shape[-1]
    if case.op == "quantize":
        body, args = (lambda x: reference.quantize_2d(x, f, BLOCK)), (inputs["x"],)
    elif case.op == "dequantize":
        mx = inputs["mx"]
        body = lambda d, s: reference.dequantize_2d(d, s, f, BLOCK, length, dtype)  # noqa: E731
        args = (mx.data, mx.scales)
    else:
        body, args = (lambda x: reference.fake_quantize_2d(x, f, BLOCK)), (inputs["x"],)
    # One compiled function per case; a reset keeps dynamo's recompile limit out of the way.
    torch._dynamo.reset()
    compiled = torch.compile(body, dynamic=False)
    t0 = time.perf_counter()
    try:
        compiled(*args)
        harness.sync(case.device)
    except Exception as e:
        raise Skip(f"torch.compile failed: {type(e).__name__}: {_first_line(e)}") from None
    finally:
        compile_s = time.perf_counter() - t0
        budget.spent_s += compile_s
        budget.compiles += 1
    return (lambda: compiled(*args)), f"compiled in {compile_s:.1f}s"


def _torchao_api():
    try:
        import logging

        logging.getLogger("torchao").setLevel(logging.ERROR)
        from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
    except Exception as e:
        raise Skip(f"torchao not importable: {type(e).__name__}: {_first_line(e)}") from None
    return to_mx, to_dtype


def _torchao_fn(case: Case, inputs: dict):
    f = case.format
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


# ----------------------------------------------------------------------------- comparison


def _as_bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(ints)


def outputs_match(a, b) -> "bool | None":
    """Bit-equality of two outputs (a tensor or a tuple of tensors); None when they are not comparable."""
    a = a if isinstance(a, (tuple, list)) else (a,)
    b = b if isinstance(b, (tuple, list)) else (b,)
    if len(a) != len(b):
        return None
    for x, y in zip(a, b):
        if x.shape != y.shape or x.element_size() != y.element_size():
            return False
        if not torch.equal(_as_bits(x), _as_bits(y)):
            return False
    return True


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else ""


# ----------------------------------------------------------------------------- running


def cases_for(device: str, ops, fmts, dtypes, shape) -> list:
    out = []
    for op in ops:
        for fmt in (fmts or DEFAULT_FMTS[op]):
            for dt in dtypes:
                out.append(Case(device, op, fmt, dt, tuple(shape)))
    return out


def timing_policy(device: str, quick: bool) -> dict:
    if quick:
        return dict(warmup=2, budget_s=0.05, min_repeats=3, max_repeats=20, slow_s=0.25, slow_repeats=3)
    if device == "cuda":
        return dict(warmup=5, budget_s=0.5, min_repeats=10, max_repeats=200, slow_s=0.5, slow_repeats=5,
                    recheck_slow=True)
    # The reference takes seconds per call at 16M elements here: 1 warmup + 3 calls, 2 past 2 s a call.
    return dict(warmup=3, budget_s=0.5, min_repeats=5, max_repeats=100, slow_s=0.25, slow_repeats=3,
                very_slow_s=2.0, very_slow_repeats=2)


def _base_row(case: Case, provider: str) -> dict:
    row = {c: None for c in COLUMNS}
    row.update(device=case.device, op=case.op, fmt=case.fmt, dtype=case.dtype,
               shape="x".join(map(str, case.shape)), provider=provider, note="")
    return row


def run_case(case: Case, providers: list, copy_bw: float, policy: dict, budget: CompileBudget) -> list:
    """Time every provider on one case; rows with speedups and the reference check filled in."""
    inputs = make_inputs(case)
    rows, oracle = [], None
    nbytes = case.bytes_moved()
    for provider in providers:
        row = _base_row(case, provider)
        kept: list = []
        try:
            fn, note = build(case, provider, inputs, budget)

            def keep_first(fn=fn, kept=kept):
                out = fn()
                if not kept:
                    kept.append(out)
                return out

            t = harness.measure(keep_first, case.device, io_bytes=nbytes, **policy)
            row.update(status="ok", time_ms=t.median_ms, q20_ms=t.q20_ms, q80_ms=t.q80_ms, repeats=t.repeats,
                       gb_s=nbytes / (t.median_ms * 1e-3) / 1e9, peak_mem_mb=t.peak_bytes / 1e6,
                       peak_mem_method=t.peak_method, note=note)
            row["frac_of_copy_bw"] = row["gb_s"] / copy_bw if copy_bw else None
            if provider == "reference-eager":
                oracle = kept[0]
            elif oracle is not None and not (provider == "torchao" and case.format.bits == 6):
                row["matches_reference"] = outputs_match(kept[0], oracle)
        except Skip as e:
            row.update(status="skipped", note=str(e))
        except torch.OutOfMemoryError:
            row.update(status="error", note="out of memory")
        except Exception as e:  # report and go on with the next provider
            row.update(status="error", note=f"{type(e).__name__}: {_first_line(e)}")
        kept.clear()
        if case.device == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
        if row["status"] == "ok":
            harness.progress(f"  {provider:<18} {row['time_ms']:10.3f} ms  {row['gb_s']:8.2f} GB/s  "
                             f"({row['frac_of_copy_bw']:.0%} of copy)")
        else:
            harness.progress(f"  {provider:<18} {row['status']}: {row['note']}")
    times = {r["provider"]: r["time_ms"] for r in rows if r["status"] == "ok"}
    for r in rows:
        if r["status"] != "ok":
            continue
        for key, base in (("speedup_vs_ref_eager", "reference-eager"), ("speedup_vs_ref_compile", "reference-compile"),
                          ("speedup_vs_torchao", "torchao")):
            if base in times:
                r[key] = times[base] / r["time_ms"]
    del inputs, oracle
    gc.collect()
    return rows


def run(devices, *, ops=OPS, fmts=None, dtypes=DEFAULT_DTYPES, providers=None, quick=False, shape=None,
        compile_budget_s=180.0) -> tuple:
    """Run the MX microbenchmarks on ``devices``; return (meta, rows)."""
    t_start = time.perf_counter()
    meta = {"benchmark": "mx", "env": harness.environment(devices), "block_size": BLOCK, "scale_mode": "floor",
            "quick": quick, "copy_bw_gb_s": {}, "shapes": {}, "timing": {}, "columns": COLUMN_DOC,
            "peak_mem_methods": {"cuda_max_allocated": "torch.cuda.max_memory_allocated above the inputs",
                                 "rss_hwm": "growth of the process's VmHWM during one call, at least its outputs "
                                            "(an estimate)",
                                 "io_bytes": "bytes of inputs and outputs (not measured)"}}
    rows = []
    budget = CompileBudget(compile_budget_s)
    for device in devices:
        dshape = tuple(shape or SHAPES[(device, quick)])
        plist = [p for p in providers_for(device) if providers is None or p in providers]
        harness.progress(f"{device}: measuring copy bandwidth")
        bw = harness.copy_bandwidth(device, budget_s=0.2 if quick else 1.0)
        harness.progress(f"{device}: dst.copy_(src) {bw:.1f} GB/s ({harness.device_name(device)})")
        policy = timing_policy(device, quick)
        meta["copy_bw_gb_s"][device] = bw
        meta["shapes"][device] = list(dshape)
        meta["timing"][device] = policy
        cases = cases_for(device, ops, fmts, dtypes, dshape)
        for i, case in enumerate(cases, 1):
            harness.progress(f"{device} [{i}/{len(cases)}] {case.label}")
            rows.extend(run_case(case, plist, bw, policy, budget))
    meta["compile"] = {"budget_s": budget.total_s, "spent_s": round(budget.spent_s, 1), "compiles": budget.compiles}
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    return meta, rows


# ----------------------------------------------------------------------------- reports and CLI


TABLE = [("device", "device"), ("op", "op"), ("fmt", "fmt"), ("dtype", "dtype"), ("provider", "provider"),
         ("time_ms", "ms"), ("gb_s", "GB/s"), ("frac_of_copy_bw", "of copy"), ("peak_mem_mb", "peak MB"),
         ("speedup_vs_ref_eager", "x ref-eager"), ("speedup_vs_ref_compile", "x ref-compile"),
         ("speedup_vs_torchao", "x torchao"), ("matches_reference", "= ref"), ("note", "note")]


def table(rows: list) -> str:
    show = []
    for r in rows:
        r = dict(r)
        r["note"] = (r["note"] or "")[:60]
        show.append(r)
    return harness.format_table(show, [c for c, _ in TABLE], [h for _, h in TABLE])


def write_reports(out: Path, name: str, meta: dict, rows: list) -> dict:
    out = Path(out)
    paths = {"json": harness.write_json(out / f"{name}.json", meta, rows),
             "csv": harness.write_csv(out / f"{name}.csv", rows, COLUMNS)}
    hl = {d: (bw, f"copy {bw:.0f} GB/s") for d, bw in meta["copy_bw_gb_s"].items()}
    try:
        paths["png"] = harness.plot_bars(
            out / f"{name}.png", rows, group_key=lambda r: f"{r['op']}\n{r['fmt']}\n{r['dtype']}",
            series_key="provider", value_key="gb_s", ylabel="GB/s (read + write)",
            title="slimops MX microbenchmarks", hlines=hl)
    except ImportError as e:
        harness.progress(f"no plot: {e}")
    return paths


def _split(values):
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small size and few repeats (for tests and smoke runs)")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to run (all: CPU, and CUDA when present; default)")
    p.add_argument("--out", default="results", help="folder for the reports (default: results/)")
    p.add_argument("--name", default="bench_mx", help="file name stem of the reports (default: bench_mx)")
    p.add_argument("--ops", nargs="+", help=f"ops to run, from {', '.join(OPS)} (default: all)")
    p.add_argument("--fmts", nargs="+", help="MX formats for every op (default: quantize mxfp8 mxint8 mxfp4, "
                                             "the others mxfp8)")
    p.add_argument("--dtypes", nargs="+", help="input dtypes (default: float32 bfloat16)")
    p.add_argument("--providers", nargs="+", help=f"providers, from {', '.join(PROVIDERS)} (default: all)")
    p.add_argument("--shape", help="ROWSxCOLS, overrides the size (default 4096x4096 on CPU, 16384x16384 on CUDA)")
    p.add_argument("--compile-budget", type=float, default=180.0,
                   help="seconds torch.compile may take over the run before reference-compile is skipped")


def parse_shape(text: "str | None", command: str) -> "tuple | None":
    if not text:
        return None
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise SystemExit(f"slimops {command}: --shape must look like 4096x4096, got {text!r}")
    return shape


def devices_from(arg: str) -> list:
    if arg == "cpu":
        return ["cpu"]
    if arg == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("slimops: --device cuda, but torch sees no CUDA device")
        return ["cuda"]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def main(args: argparse.Namespace) -> int:
    ops = _split(args.ops) or list(OPS)
    dtypes = _split(args.dtypes) or list(DEFAULT_DTYPES)
    providers = _split(args.providers)
    for bad, allowed, what in ((set(ops) - set(OPS), OPS, "--ops"), (set(dtypes) - set(DTYPES), DTYPES, "--dtypes"),
                               (set(providers or ()) - set(PROVIDERS), PROVIDERS, "--providers")):
        if bad:
            raise SystemExit(f"slimops bench: {what}: unknown {sorted(bad)}; expected from {list(allowed)}")
    shape = parse_shape(args.shape, "bench")
    meta, rows = run(devices_from(args.device), ops=ops, fmts=_split(args.fmts), dtypes=dtypes, providers=providers,
                     quick=args.quick, shape=shape, compile_budget_s=args.compile_budget)
    paths = write_reports(Path(args.out), args.name, meta, rows)
    env = meta["env"]
    print()
    print(f"slimops MX microbenchmarks, {env['date']}, torch {env['versions']['torch']}, "
          f"slimops {env['versions']['slimops']}")
    for d, bw in meta["copy_bw_gb_s"].items():
        print(f"  {d}: {env['devices'][d]}, shape {'x'.join(map(str, meta['shapes'][d]))}, "
              f"copy bandwidth {bw:.1f} GB/s")
    print()
    print(table(rows))
    print()
    print("reports: " + ", ".join(str(p) for p in paths.values()) + f"  ({meta['wall_s']:.0f}s)")
    return 0 if any(r["status"] == "ok" for r in rows) else 1
