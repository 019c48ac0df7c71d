"""The slicescale family's benchmarks: mx_convert bandwidth (a suite of the common runner) and the
SQNR cost of double rounding.

``slimops bench slicescale`` times, at 8192 x 8192 on the CPU (16384 x 16384 on CUDA), block 32:

* ``convert``: the packed -> packed conversion of an anchor (MX-quantized Gaussian data) for every
  pair ``mx_convert`` accepts (14; ``--pairs`` chooses);
* ``quantize``: ``mx_quantize`` of fp32 and bf16 into every MX format (the anchor's making, and the
  op whose ``out=`` this suite measures beside mx_convert's; ``--fmts`` / ``--dtypes`` choose).

Inside ``slimops bench`` with other suites (no family named, or several) the default is quick:
4096 x 4096, three pairs (one of each source width) and bf16 -> mxfp8, so that the main command
stays short; ``slimops bench slicescale`` alone runs the whole set. ``--quick``: 256 x 1024.

Providers, interleaved round by round:

* ``slimops-native`` / ``slimops-triton``: the op as a plain call, which allocates its outputs
  (``torch.ops.slimops.mx_convert`` / ``mx_quantize``; C++ on CPU, CUDA C++ and Triton on CUDA);
* ``slimops-native-out`` / ``slimops-triton-out``: the same kernels into output buffers made once
  and reused (``mx_convert_out`` / ``mx_quantize_out``): the kernel alone;
* ``slimops-native-report`` / ``slimops-triton-report`` (convert): ``-out`` with the conversion
  report counted (``counts=``); ``report_overhead`` is its time over ``-out``'s, less one;
* ``slimops-native-avx2-out`` (CPU, convert): ``-out`` on the AVX2 path, from a second copy of
  ``slimops._C`` loaded with ``SLIMOPS_CPU_ISA=avx2`` (the path is chosen once per loaded module), so
  that both paths are timed in the same rounds;
* ``reference-eager`` (the oracle of ``matches_reference``): the pure-PyTorch reference on 16 rows
  spread over the tensor (all of them for small inputs), every other provider's output compared on
  those rows; its work is the sampled rows' bytes;
* ``requantize`` (convert): ``quantize(dequantize(anchor), dst)`` with slimops' own native kernels,
  what one does without Slice-and-Scale (equal bytes for FLOOR anchors of these inputs);
* ``torchao`` (convert, FP pairs): the same round trip through torchao (``to_dtype`` then ``to_mx``), on
  the oracle's rows (its eager path takes minutes at full size), its work scaled to them;
* ``alloc-copy``: the allocating roofline ``torch.empty_like(y).copy_(y)`` of the op's large tensor
  (the anchor's packed data; quantize's input), 2 * y.nbytes; ``frac_of_alloc_copy`` is each row's
  GB/s over this row's.

Bytes moved (GB/s, fraction of the copy roofline): what the op reads and writes, the same for every
provider (convert: the packed anchor and its scales, the packed target and its scales; quantize: the
input, the packed elements and the scales).

``python -m slimops.slicescale.bench [--quick] [--out DIR]`` prints (and writes as JSON) the SQNR
table: SQNR (dB) against the original values of ``convert(quantize(x, src), dst)`` and of
``quantize(x, dst)``, per pair, on Gaussian, Laplace and Student-t (3 d.o.f.) data.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import sys

import torch

from ..benchmarks.runner import Case, CompileBudget, Skip, Suite, first_line, outputs_match, quiet_peer
from ..mx.bench import MXSuite
from ..mx.formats import FORMATS, get_format

PAIRS = [("mxint8", "mxint6"), ("mxint8", "mxint4"), ("mxint8", "mxint2"), ("mxint6", "mxint4"),
         ("mxint6", "mxint2"), ("mxint4", "mxint2"),
         ("mxfp8_e4m3", "mxfp6_e3m2"), ("mxfp8_e4m3", "mxfp6_e2m3"), ("mxfp8_e4m3", "mxfp4_e2m1"),
         ("mxfp8_e5m2", "mxfp6_e3m2"), ("mxfp8_e5m2", "mxfp6_e2m3"), ("mxfp8_e5m2", "mxfp4_e2m1"),
         ("mxfp6_e3m2", "mxfp4_e2m1"), ("mxfp6_e2m3", "mxfp4_e2m1")]
QUICK_PAIRS = [("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1")]
# the default inside a multi-suite ``slimops bench``: one pair of each source width, one quantize
IN_ALL_PAIRS = [("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1"), ("mxfp6_e2m3", "mxfp4_e2m1")]
IN_ALL_QUANTIZE = [("bfloat16", "mxfp8_e4m3")]
OPS = ("convert", "quantize")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
QUANTIZE_DTYPES = ("float32", "bfloat16")
DISTRIBUTIONS = ("gaussian", "laplace", "student_t3")
SHAPES = {("cpu", False): (8192, 8192), ("cuda", False): (16384, 16384),
          ("cpu", True): (256, 1024), ("cuda", True): (2048, 4096)}
IN_ALL_SHAPES = {"cpu": (4096, 4096), "cuda": (16384, 16384)}
BLOCK = 32
SAMPLE_ROWS = 16  # rows of the reference-eager oracle
PROVIDERS = ("reference-eager", "slimops-native", "slimops-native-out", "slimops-native-report",
             "slimops-native-avx2-out", "slimops-triton", "slimops-triton-out", "slimops-triton-report", "requantize",
             "torchao", "alloc-copy")
SLIMOPS_BACKENDS = {"cpu": {"native": "native"}, "cuda": {"triton": "triton", "native": "native"}}
_TORCHAO_ELEM = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp6_e2m3": "fp6_e2m3",
                 "mxfp6_e3m2": "fp6_e3m2", "mxfp4_e2m1": "float4_e2m1fn_x2"}


# ----------------------------------------------------------------------------- the runner's suite


def parse_pairs(values) -> list:
    if not values:
        return None
    out = []
    for item in (v for val in values for v in val.split(",") if v):
        if item == "all":
            out += PAIRS
            continue
        if "->" not in item and ":" not in item:
            raise SystemExit(f"slimops bench slicescale: --pairs: {item!r} is not SRC:DST")
        src, dst = item.replace("->", ":").split(":")
        try:
            from .reference import check_pair

            check_pair(get_format(src), get_format(dst))
        except ValueError as e:
            raise SystemExit(f"slimops bench slicescale: --pairs: {e}") from None
        out.append((get_format(src).name, get_format(dst).name))
    return out


def _rows(case: Case) -> tuple:
    return math.prod(case.shape[:-1]), case.shape[-1]


def bytes_moved(case: Case) -> int:
    rows, length = _rows(case)
    nblocks = rows * -(-length // BLOCK)
    if case.op == "quantize":
        return rows * length * DTYPES[case.src].itemsize + rows * get_format(case.dst).packed_bytes(length) + nblocks
    return sum(rows * get_format(f).packed_bytes(length) + nblocks for f in (case.src, case.dst))


def sample_rows(case: Case) -> "torch.Tensor | None":
    """The rows the reference oracle converts (None: all of them)."""
    rows = _rows(case)[0]
    if rows <= SAMPLE_ROWS:
        return None
    return torch.linspace(0, rows - 1, SAMPLE_ROWS).round().long().to(case.device)


def make_inputs(case: Case, seed: int = 0) -> dict:
    import slimops

    g = torch.Generator(device=case.device).manual_seed(seed)
    x = torch.randn(case.shape, generator=g, dtype=torch.float32, device=case.device)
    if case.op == "quantize":
        return {"x": x.to(DTYPES[case.src])}
    try:
        anchor = slimops.mx.quantize(x, case.src, BLOCK)
    except Exception:
        with slimops.use_backend("reference"):
            anchor = slimops.mx.quantize(x, case.src, BLOCK)
    return {"x": x, "anchor": anchor}


def _slimops_fn(case: Case, backend: str, kind: str, inputs: dict):
    """The op through ``backend``: ``kind`` "" (a plain call), "out" (reused buffers), "report"."""
    import slimops

    if kind == "report" and case.op != "convert":
        raise Skip("the conversion report is mx_convert's")
    if case.op == "quantize":
        x = inputs["x"]
        f = get_format(case.dst)
        bufs = (torch.empty(x.shape[0], f.packed_bytes(x.shape[1]), dtype=torch.uint8, device=x.device),
                torch.empty(x.shape[0], -(-x.shape[1] // BLOCK), dtype=torch.uint8, device=x.device))

        def fn():
            with slimops.use_backend(backend):
                t = slimops.mx.quantize(x, case.dst, BLOCK, out=bufs if kind else None)
            return t.data, t.scales
        return fn

    a = inputs["anchor"]
    f = get_format(case.dst)
    bufs = (torch.empty(a.data.shape[0], f.packed_bytes(a.shape[-1]), dtype=torch.uint8, device=a.device),
            torch.empty_like(a.scales))

    def fn():
        with slimops.use_backend(backend):
            if not kind:
                t = a.convert(case.dst)
            elif kind == "out":
                t = a.convert(case.dst, out=bufs)
            else:
                t, _ = a.convert(case.dst, out=bufs, report=True)
        return t.data, t.scales
    return fn


def _backend_available(case: Case, backend: str) -> None:
    import slimops
    from .._backend import resolve

    family, op = ("mx", "mx_quantize") if case.op == "quantize" else ("slicescale", "mx_convert")
    dtype = DTYPES[case.src] if case.op == "quantize" else None
    try:
        with slimops.use_backend(backend):
            got = resolve(family, op, case.device, dtype) if dtype else resolve(family, op, case.device)
    except RuntimeError as e:
        raise Skip(str(e)) from None
    if got != backend:
        raise Skip(f"backend {backend!r} is not available on {case.device} (resolves to {got!r})")


def _reference_fn(case: Case, inputs: dict):
    """The reference on the sampled rows (their bytes are this provider's work)."""
    import slimops

    rows = sample_rows(case)
    pick = (lambda t: t) if rows is None else (lambda t: t.index_select(0, rows))
    note = "" if rows is None else f"pure-PyTorch reference on {SAMPLE_ROWS} of {_rows(case)[0]} rows"
    if case.op == "quantize":
        x = pick(inputs["x"])

        def fn():
            with slimops.use_backend("reference"):
                t = slimops.mx.quantize(x, case.dst, BLOCK)
            return t.data, t.scales
        return fn, note
    a = inputs["anchor"]
    sub = slimops.mx.MXTensor(pick(a.data), pick(a.scales), a.fmt, a.block_size, a.axis,
                              torch.Size((a.data.shape[0] if rows is None else len(rows), a.shape[-1])))

    def fn():
        with slimops.use_backend("reference"):
            t = sub.convert(case.dst)
        return t.data, t.scales
    return fn, note


_AVX2_MODULE = []


def avx2_module():
    """A second copy of slimops._C whose kernels run the AVX2 path (SLIMOPS_CPU_ISA=avx2 at its first call)."""
    if not _AVX2_MODULE:
        import shutil
        import tempfile

        from .._backend import native_module
        from ..benchmarks.harness import native_build

        src = native_module("_C").__file__
        folder = tempfile.mkdtemp(prefix="slimops-avx2-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, os.path.basename(src))
        shutil.copy(src, path)
        lib = native_build(path)  # a second copy, under its own package name
        saved = os.environ.get("SLIMOPS_CPU_ISA")
        os.environ["SLIMOPS_CPU_ISA"] = "avx2"
        try:
            path_name = lib.mx_convert_path()  # the ISA is chosen here, once for this copy
        finally:
            os.environ.pop("SLIMOPS_CPU_ISA") if saved is None else os.environ.__setitem__("SLIMOPS_CPU_ISA", saved)
        _AVX2_MODULE.append((lib, path_name))
    return _AVX2_MODULE[0]


def _avx2_fn(case: Case, inputs: dict):
    from . import cpu

    if case.device != "cpu" or case.op != "convert":
        raise Skip("the AVX2 path of mx_convert on the CPU")
    lib, path = avx2_module()
    if path != "avx2":
        raise Skip(f"this CPU has no AVX2 (the copy runs {path!r})")
    fn = _slimops_fn(case, "native", "out", inputs)

    def call():
        saved = cpu._C
        cpu._C = lambda: lib
        try:
            return fn()
        finally:
            cpu._C = saved
    return call, "into buffers made once, on the AVX2 path (a second copy of slimops._C)"


def build(case: Case, provider: str, inputs: dict, budget: CompileBudget):
    import slimops

    if provider == "slimops-native-avx2-out":
        return _avx2_fn(case, inputs)
    if provider.startswith("slimops-"):
        name, _, kind = provider.removeprefix("slimops-").partition("-")  # (native|triton), (|out|report)
        backend = SLIMOPS_BACKENDS[case.device].get(name)
        if backend is None:
            raise Skip(f"{provider} does not run on {case.device}")
        _backend_available(case, backend)
        note = {"": "a plain call (allocates its outputs)", "out": "into buffers made once (out=)",
                "report": "out= and the conversion report"}[kind]
        return _slimops_fn(case, backend, kind, inputs), note
    if provider == "reference-eager":
        return _reference_fn(case, inputs)
    if provider == "alloc-copy":
        y = inputs["x"] if case.op == "quantize" else inputs["anchor"].data
        return (lambda: torch.empty_like(y).copy_(y)), "roofline: torch.empty_like(y).copy_(y)"
    if case.op != "convert":
        raise Skip(f"{provider} measures convert only")
    a = inputs["anchor"]
    if provider == "requantize":
        def fn():
            t = slimops.mx.quantize(a.dequantize(torch.float32), case.dst, BLOCK)
            return t.data, t.scales

        return fn, "quantize(dequantize(anchor)), slimops kernels"
    if provider == "torchao":
        if get_format(case.src).is_int:
            raise Skip("torchao has no MXINT formats")
        try:
            with quiet_peer("torchao"):
                from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
        except Exception as e:
            raise Skip(f"torchao not importable: {type(e).__name__}: {first_line(e)}") from None
        src_e, dst_e = (getattr(torch, _TORCHAO_ELEM[f], _TORCHAO_ELEM[f]) for f in (case.src, case.dst))
        rows = sample_rows(case)  # torchao's eager path takes minutes at full size: the oracle's rows
        scale, data = to_mx(inputs["x"] if rows is None else inputs["x"].index_select(0, rows), src_e, BLOCK)

        def fn():
            s2, d2 = to_mx(to_dtype(data, scale, src_e, BLOCK, torch.float32), dst_e, BLOCK)
            return d2.view(torch.uint8), s2.view(torch.uint8)

        note = "to_mx(to_dtype(anchor))" + (", fp6 one per byte" if get_format(case.dst).bits == 6 else "")
        return fn, note + ("" if rows is None else f", on {SAMPLE_ROWS} of {_rows(case)[0]} rows")
    raise Skip(f"unknown provider {provider}")


def _split(values):
    return [v for item in values for v in item.split(",") if v] if values else None


class SliceScaleSuite(Suite):
    name = "slicescale"
    title = "slimops Slice-and-Scale (mx_convert) and MX quantize, into reused buffers and allocating"
    providers = PROVIDERS
    oracle = "reference-eager"
    speedups = {"speedup_vs_requantize": "requantize", "speedup_vs_torchao": "torchao"}
    case_columns = ("op", "src", "dst", "shape")
    extra_columns = ("frac_of_alloc_copy", "report_overhead")
    table_columns = Suite.table_columns + [("frac_of_alloc_copy", "of alloc"), ("report_overhead", "report +")]

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("slicescale suite")
        g.add_argument("--pairs", nargs="+", help="SRC:DST pairs for mx_convert, or 'all' (default: all 14; inside "
                                                   "a multi-suite slimops bench: three; --quick: two)")
        g.add_argument("--ss-ops", nargs="+", choices=OPS, help="what the slicescale suite times (default: convert "
                                                                 "and quantize)")
        g.add_argument("--fmts", "--fmt", nargs="+", help="MX formats (slicescale: quantize's targets; default all)")
        g.add_argument("--dtypes", "--dtype", nargs="+", help="input dtypes (slicescale: quantize's; default "
                                                               "float32 bfloat16)")
        g.add_argument("--shape", help="ROWSxCOLS, overrides the size")

    def check_arguments(self, args: argparse.Namespace) -> None:
        parse_pairs(getattr(args, "pairs", None))
        for fmt in _split(getattr(args, "fmts", None)) or ():
            try:
                get_format(fmt)
            except ValueError as e:
                raise SystemExit(f"slimops bench slicescale: --fmts: {e}") from None
        bad = set(_split(getattr(args, "dtypes", None)) or ()) - set(DTYPES)
        if bad:
            raise SystemExit(f"slimops bench slicescale: --dtypes: unknown {sorted(bad)}; expected from {list(DTYPES)}")

    def select_op(self, args: argparse.Namespace, op: str) -> None:
        if op not in ("slicescale_mx_convert", "mx_convert"):
            raise SystemExit(f"slimops: unknown slicescale op {op!r}; expected mx_convert")
        args.ss_ops = ["convert"]

    def cases(self, args: argparse.Namespace, device: str) -> list:
        from ..mx.bench import parse_shape

        families = getattr(args, "families", None)
        in_all = families is not None and families != ["slicescale"]  # inside a multi-suite slimops bench
        quick = bool(args.quick)
        shape = parse_shape(getattr(args, "shape", None)) or (
            IN_ALL_SHAPES[device] if in_all and not quick else SHAPES[(device, quick)])
        ops = getattr(args, "ss_ops", None) or OPS
        pairs = parse_pairs(getattr(args, "pairs", None)) or (
            QUICK_PAIRS if quick else IN_ALL_PAIRS if in_all else PAIRS)
        fmts, dtypes = _split(getattr(args, "fmts", None)), _split(getattr(args, "dtypes", None))
        if fmts or dtypes or not (quick or in_all):
            quant = [(dt, get_format(f).name) for dt in dtypes or QUANTIZE_DTYPES for f in fmts or list(FORMATS)]
        else:
            quant = IN_ALL_QUANTIZE
        out = []
        if "convert" in ops:
            out += [Case(device, {"op": "convert", "src": s, "dst": d, "shape": tuple(shape)}) for s, d in pairs]
        if "quantize" in ops:
            out += [Case(device, {"op": "quantize", "src": dt, "dst": f, "shape": tuple(shape)}) for dt, f in quant]
        return out

    def providers_for(self, device: str) -> list:
        backends = SLIMOPS_BACKENDS[device]
        return [p for p in PROVIDERS if not p.startswith("slimops-") or p.split("-")[1] in backends]

    def inputs(self, case: Case) -> dict:
        return make_inputs(case)

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        return build(case, provider, inputs, budget)

    def work(self, case: Case) -> int:
        return bytes_moved(case)

    def work_of(self, case: Case, provider: str, work: int) -> int:
        if provider == "alloc-copy":
            rows, length = _rows(case)
            big = rows * length * DTYPES[case.src].itemsize if case.op == "quantize" else \
                rows * get_format(case.src).packed_bytes(length)
            return 2 * big
        if self.share_of(case, provider) < 1:
            return work * SAMPLE_ROWS // _rows(case)[0]
        return work

    def share_of(self, case: Case, provider: str) -> float:
        if provider in ("reference-eager", "torchao") and sample_rows(case) is not None:
            return SAMPLE_ROWS / _rows(case)[0]  # timed on the oracle's rows
        return 1.0

    finish_rows = MXSuite.finish_rows  # frac_of_alloc_copy: each row's GB/s over the alloc-copy row's

    def finish_case(self, case: Case, rows: list) -> None:
        t = {r["provider"]: r["time_ms"] for r in rows if r["time_ms"]}
        for r in rows:
            base = r["provider"].removesuffix("-report") + "-out"
            if r["provider"].endswith("-report") and r["time_ms"] and base in t:
                r["report_overhead"] = r["time_ms"] / t[base] - 1

    def compare(self, case: Case, provider: str, out, oracle_out):
        if provider == "alloc-copy":
            return None  # a roofline, not the op
        if provider == "torchao" and get_format(case.dst).bits == 6:
            return None  # torchao keeps fp6 one per byte
        rows = sample_rows(case)
        if rows is not None and isinstance(out, tuple) and out[0].shape[0] != len(rows):
            out = tuple(t.index_select(0, rows) for t in out)
        return outputs_match(out, oracle_out)


SUITE = SliceScaleSuite()


# ----------------------------------------------------------------------------- SQNR of double rounding


def sample(dist: str, shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dist == "gaussian":
        return torch.randn(shape, generator=g)
    u = torch.rand(shape, generator=g) - 0.5
    if dist == "laplace":
        return -torch.sign(u) * torch.log1p(-2 * u.abs())
    z = torch.randn(shape, generator=g)  # Student-t, 3 d.o.f.: z / sqrt(chi2_3 / 3)
    chi2 = torch.randn((3, *shape), generator=g).pow(2).sum(0)
    return z / torch.sqrt(chi2 / 3)


def sqnr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    err = (x.double() - y.double()).pow(2).sum()
    return float(10 * torch.log10(x.double().pow(2).sum() / err)) if err > 0 else float("inf")


def sqnr_rows(shape=(1024, 1024), pairs=PAIRS) -> list:
    import slimops

    rows = []
    for dist in DISTRIBUTIONS:
        x = sample(dist, shape)
        for src, dst in pairs:
            direct = slimops.mx.quantize(x, dst).dequantize()
            conv = slimops.mx.quantize(x, src).convert(dst).dequantize()
            a, b = sqnr_db(x, direct), sqnr_db(x, conv)
            rows.append({"dist": dist, "pair": f"{src}->{dst}", "sqnr_direct_db": round(a, 3),
                         "sqnr_convert_db": round(b, 3), "double_rounding_cost_db": round(a - b, 3)})
    return rows


def format_sqnr(rows: list) -> str:
    out = ["SQNR (dB) vs the original values: quantize(x, dst) directly, convert(quantize(x, src), dst), "
           "and the cost of rounding twice",
           f"{'dist':11} {'pair':28} {'direct':>8} {'convert':>8} {'cost':>7}"]
    for r in rows:
        out.append(f"{r['dist']:11} {r['pair']:28} {r['sqnr_direct_db']:8.2f} {r['sqnr_convert_db']:8.2f} "
                   f"{r['double_rounding_cost_db']:7.3f}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m slimops.slicescale.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None, help="folder for sqnr_slicescale.json")
    args = p.parse_args(argv)
    rows = sqnr_rows((256, 256) if args.quick else (1024, 1024))
    print(format_sqnr(rows))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "sqnr_slicescale.json"), "w") as f:
            json.dump({"shape": [256, 256] if args.quick else [1024, 1024], "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
