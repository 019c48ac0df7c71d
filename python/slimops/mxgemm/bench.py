"""The mxgemm family's benchmark suite: ``slimops bench mxgemm`` (the common runner).

``y = x @ W.T`` for x [M, K] in bf16 or fp32 and W [N, K], providers interleaved round by round:

* ``slimops-native`` (CPU): ``torch.ops.slimops.mx_linear`` on the C++ kernels; ``slimops-triton``
  (CUDA): the same op on the Triton kernels.
* ``dequant-linear``: ``F.linear(x, dequantize(W, x.dtype))`` with slimops' own dequantize kernel:
  ``MXLinear``'s forward before ``mx_linear`` (the oracle of ``matches_reference``, which here means
  within ``2^-6`` (bf16) or ``2^-16`` (fp32) of the oracle's largest output).
* ``nn-linear``: ``F.linear`` with a dense weight in x's dtype (oneDNN's bf16 GEMM, MKL's fp32 GEMM
  on CPU; cuBLAS on CUDA).
* ``int8pack`` (CPU): ``torch._weight_int8pack_mm`` (int8 per output channel); ``int4pack`` (CPU):
  ``torch._weight_int4pack_mm_for_cpu`` (int4 in groups of 32, after
  ``torch._convert_weight_to_int4pack_for_cpu``): the weight-only kernels a CPU user of torch has.

No GPU provider beyond these is wired in yet (torchao's MX linear dequantizes then multiplies off
SM100, which is ``dequant-linear``); this suite has not run on a GPU.

Weights come from memory, not cache: each provider cycles through copies of its weight (packed,
dense, int8 or int4, whichever it reads) totalling at least 64 MiB (this CPU's L3 is 32 MiB), one
copy per call. ``work`` is the bytes of the weight the provider reads (reads only), so ``gb_s`` and
``frac_of_copy_bw`` (against the copy roofline's read + write rate) are its weight bandwidth;
``tflop_s`` (an extra column) is 2 M N K / time.

Grid: by default (it runs inside ``slimops bench`` with every other suite; about 2 minutes on the
2-core CPU) 4096 x 4096 at M = 1, 16 and 512 for MXINT4, MXFP4, MXINT8 and MXFP8 in bf16, and M = 1
in fp32 for the 4-bit formats. ``--full``: M in {1, 4, 16, 128, 512, 2048} (and 4096 on a GPU),
(K, N) in {(4096, 4096), (4096, 14336), (14336, 4096)}, every format, bf16 and fp32. ``--ms``,
``--shapes``, ``--fmts``, ``--dtypes`` narrow either grid.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from ..benchmarks.runner import Case, CompileBudget, Skip, Suite
from ..mx.formats import FORMATS, get_format

BLOCK = 32
MIN_BYTES = 64 << 20  # each provider's weights: at least this many bytes, cycled call by call
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}
SHAPES = ((4096, 4096), (4096, 14336), (14336, 4096))
FULL_MS = {"cpu": (1, 4, 16, 128, 512, 2048), "cuda": (1, 4, 16, 128, 512, 2048, 4096)}
DEFAULT_FMTS = ("mxint4", "mxfp4_e2m1", "mxint8", "mxfp8_e4m3")
PROVIDERS = ("dequant-linear", "slimops-native", "slimops-triton", "nn-linear", "int8pack", "int4pack")
SLIMOPS_BACKENDS = {"cpu": {"slimops-native": "native"}, "cuda": {"slimops-triton": "triton"}}


def _split(values):
    return [v for item in values for v in item.split(",") if v] if values else None


def default_cases(device: str) -> list:
    out = [(fmt, "bfloat16", m, 4096, 4096) for m in (1, 16, 512) for fmt in DEFAULT_FMTS]
    out += [(fmt, "float32", 1, 4096, 4096) for fmt in ("mxint4", "mxfp4_e2m1")]
    return out


def full_cases(device: str) -> list:
    return [(fmt, dt, m, k, n) for k, n in SHAPES for m in FULL_MS[device] for dt in DTYPES for fmt in FORMATS]


def parse_shapes(values) -> "list | None":
    items = _split(values)
    if not items:
        return None
    out = []
    for item in items:
        try:
            k, n = (int(v) for v in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"slimops bench mxgemm: --shapes: {item!r} is not KxN (4096x14336)") from None
        if min(k, n) < 1:
            raise SystemExit(f"slimops bench mxgemm: --shapes: {item!r} must be positive")
        out.append((k, n))
    return out


def weight_bytes(case: Case, provider: str) -> int:
    """Bytes of the weight representation ``provider`` reads in one call."""
    n, k = case.N, case.K
    if provider in ("slimops-native", "slimops-triton", "dequant-linear"):
        return n * get_format(case.fmt).packed_bytes(k) + n * -(-k // BLOCK)
    if provider == "nn-linear":
        return n * k * DTYPES[case.dtype].itemsize
    if provider == "int8pack":
        return n * k + n * DTYPES[case.dtype].itemsize
    if provider == "int4pack":
        return n * k // 2 + (k // 32) * n * 2 * DTYPES[case.dtype].itemsize
    return 0


def _copies(nbytes: int, quick: bool = False) -> int:
    return max(1, -(-(MIN_BYTES >> 6 if quick else MIN_BYTES) // max(nbytes, 1)))


def make_inputs(case: Case, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    dt = DTYPES[case.dtype]
    w = torch.randn(case.N, case.K, generator=g) * 0.02
    x = torch.randn(case.M, case.K, generator=g).to(dt).to(case.device)
    return {"x": x, "w": w}


def _cycle(items: list, fn):
    state = [0]

    def call():
        state[0] = (state[0] + 1) % len(items)
        return fn(items[state[0]])

    return call


def build(case: Case, provider: str, inputs: dict, quick: bool = False):
    import slimops

    x, w, dt, dev = inputs["x"], inputs["w"], DTYPES[case.dtype], case.device
    copies = _copies(weight_bytes(case, provider), quick)
    if provider.startswith("slimops-") or provider == "dequant-linear":
        t = slimops.mx.quantize(w, case.fmt, BLOCK)
        packs = [(t.data.to(dev).clone(), t.scales.to(dev).clone()) for _ in range(copies)]
        if provider == "dequant-linear":
            def dequant_linear(p):
                wd = slimops.mx.MXTensor(p[0], p[1], case.fmt, BLOCK, 1, (case.N, case.K)).dequantize(dt)
                return F.linear(x, wd)

            return _cycle(packs, dequant_linear), f"{copies} copies of the packed weight"
        backend = SLIMOPS_BACKENDS[dev].get(provider)
        if backend is None:
            raise Skip(f"{provider} does not run on {dev}")
        from .._backend import resolve

        with slimops.use_backend(backend):
            try:
                got = resolve("mxgemm", "mx_linear", dev, dt)
            except RuntimeError as e:
                raise Skip(str(e)) from None
        if got != backend:
            raise Skip(f"backend {backend!r} is not available on {dev} (resolves to {got!r})")

        def fused(p):
            with slimops.use_backend(backend):
                return torch.ops.slimops.mx_linear(x, p[0], p[1], case.fmt, BLOCK, None)

        note = f"{copies} copies"
        if dev == "cpu":  # which C++ kernel runs (small-M / GEMM, fp32 / bf16 lanes, generic)
            path = slimops._C.mx_linear_path({torch.float32: 0, torch.bfloat16: 1}[dt], case.M, case.K, case.N,
                                             get_format(case.fmt).format_id, BLOCK)
            note += f"; kernel {path}"
        return _cycle(packs, fused), note
    if provider == "nn-linear":
        dense = [w.to(dt).to(dev) for _ in range(copies)]
        return _cycle(dense, lambda wd: F.linear(x, wd)), f"{copies} copies of the dense weight"
    if dev != "cpu":
        raise Skip(f"{provider} is torch's CPU kernel")
    if dt == torch.float32 and case.M >= 512:  # 3.6-7.4 s a call at M = 512 and 29 s at 2048 on the 2-core report machine
        raise Skip(f"{provider} takes seconds per call with fp32 x from M = 512 (40-80x nn.Linear); not run")
    if provider == "int8pack":
        s = w.abs().amax(1).clamp_min(1e-12) / 127
        q = torch.round(w / s[:, None]).clamp(-127, 127).to(torch.int8)
        packs = [(q.clone(), s.to(dt)) for _ in range(copies)]
        return _cycle(packs, lambda p: torch._weight_int8pack_mm(x, p[0], p[1])), "int8, a scale per output channel"
    if provider == "int4pack":
        if case.K % 32:
            raise Skip("int4pack needs K a multiple of its group (32)")
        groups = w.view(case.N, case.K // 32, 32)
        lo, hi = groups.amin(-1), groups.amax(-1)
        scale = ((hi - lo) / 15).clamp_min(1e-12)
        q = torch.round((groups - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).view(case.N, case.K)
        zero = lo + 8 * scale  # value = (q - 8) * scale + zero
        sz = torch.stack([scale, zero], -1).transpose(0, 1).contiguous().to(dt)  # [K / 32, N, 2]
        packed = torch._convert_weight_to_int4pack_for_cpu(q, 1)
        packs = [(packed.clone(), sz) for _ in range(copies)]
        return (_cycle(packs, lambda p: torch._weight_int4pack_mm_for_cpu(x, p[0], 32, p[1])),
                "int4 in groups of 32 (scale and zero)")
    raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")


class MXGemmSuite(Suite):
    name = "mxgemm"
    title = "slimops fused MX matmul (mx_linear)"
    providers = PROVIDERS
    oracle = "dequant-linear"
    speedups = {"speedup_vs_nn_linear": "nn-linear", "speedup_vs_dequant_linear": "dequant-linear",
                "speedup_vs_int8pack": "int8pack", "speedup_vs_int4pack": "int4pack"}
    case_columns = ("fmt", "dtype", "M", "K", "N")
    extra_columns = ("tflop_s_mnk",)
    table_columns = [("time_ms", "ms"), ("median_ms", "median"), ("tflop_s_mnk", "TFLOP/s"),
                     ("gb_s", "W GB/s"), ("frac_of_copy_bw", "of copy")]

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("mxgemm suite")
        g.add_argument("--full", action="store_true", help="the full grid: M in 1 4 16 128 512 2048 (4096 on a "
                                                           "GPU), KxN in 4096x4096 4096x14336 14336x4096, every "
                                                           "format, bf16 and fp32")
        g.add_argument("--ms", nargs="+", help="mxgemm: rows of x (M) to run (default: the grid's)")
        g.add_argument("--shapes", nargs="+", help="mxgemm: KxN weight shapes (default: the grid's)")
        g.add_argument("--fmts", "--fmt", nargs="+", help="MX formats")
        g.add_argument("--dtypes", "--dtype", nargs="+", help="input dtypes")

    def check_arguments(self, args: argparse.Namespace) -> None:
        for fmt in _split(getattr(args, "fmts", None)) or ():
            try:
                get_format(fmt)
            except ValueError as e:
                raise SystemExit(f"slimops bench mxgemm: --fmts: {e}") from None
        bad = set(_split(getattr(args, "dtypes", None)) or ()) - set(DTYPES) - {"float16"}
        if bad:
            raise SystemExit(f"slimops bench mxgemm: --dtypes: unknown {sorted(bad)}; expected from {list(DTYPES)}")
        try:
            [int(m) for m in _split(getattr(args, "ms", None)) or ()]
        except ValueError:
            raise SystemExit(f"slimops bench mxgemm: --ms must be integers, got {args.ms}") from None
        parse_shapes(getattr(args, "shapes", None))

    def cases(self, args: argparse.Namespace, device: str) -> list:
        grid = full_cases(device) if getattr(args, "full", False) else default_cases(device)
        if args.quick:
            grid = [("mxint4", "bfloat16", m, 256, 512) for m in (1, 24)]
        fmts = {get_format(f).name for f in _split(getattr(args, "fmts", None)) or ()}
        dts = set(_split(getattr(args, "dtypes", None)) or ()) & set(DTYPES)
        ms = {int(m) for m in _split(getattr(args, "ms", None)) or ()}
        shapes = parse_shapes(getattr(args, "shapes", None))
        if shapes:  # the grid's (fmt, dtype, M) at the shapes asked for
            grid = list(dict.fromkeys((f, d, m, k, n) for f, d, m, _, _ in grid for k, n in shapes))
        return [Case(device, {"fmt": f, "dtype": d, "M": m, "K": k, "N": n}) for f, d, m, k, n in grid
                if (not fmts or f in fmts) and (not dts or d in dts) and (not ms or m in ms)]

    def providers_for(self, device: str) -> list:
        return [p for p in PROVIDERS if not p.startswith("slimops-") or p in SLIMOPS_BACKENDS[device]]

    def inputs(self, case: Case) -> dict:
        return make_inputs(case)

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        return build(case, provider, inputs, quick=case.K * case.N < 1 << 20)

    def work(self, case: Case) -> int:
        return weight_bytes(case, "slimops-native")

    def work_of(self, case: Case, provider: str, work: int) -> int:
        return weight_bytes(case, provider)

    def finish_case(self, case: Case, rows: list) -> None:
        for r in rows:
            if r["time_ms"]:
                r["tflop_s_mnk"] = 2 * case.M * case.K * case.N / (r["time_ms"] * 1e-3) / 1e12

    def compare(self, case: Case, provider: str, out, oracle_out):
        if not provider.startswith("slimops-"):
            return None  # other weights (int8, int4, dense): not the same product
        tol = 2.0**-6 if case.dtype == "bfloat16" else 2.0**-16
        scale = oracle_out.float().abs().max().clamp_min(1e-30)
        return bool(((out.float() - oracle_out.float()).abs().max() / scale) <= tol)

    def plot(self, path, rows: list, meta: dict):
        from ..benchmarks import harness

        return harness.plot_bars(path, [r for r in rows if r["time_ms"]],
                                 group_key=lambda r: f"{r['fmt']}\n{r['dtype']}\nM={r['M']}\n{r['K']}x{r['N']}",
                                 series_key="provider", value_key="tflop_s_mnk", ylabel="TFLOP/s (2MNK / time)",
                                 title=self.title)


SUITE = MXGemmSuite()
