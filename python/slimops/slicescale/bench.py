"""The slicescale family's benchmarks: mx_convert bandwidth (a suite of the common runner) and the
SQNR cost of double rounding.

``slimops bench slicescale`` times the packed -> packed conversion of a (4096, 4096) anchor
(16384 x 16384 on CUDA) for each pair, providers interleaved round by round:

* ``slimops-native`` / ``slimops-triton``: ``torch.ops.slimops.mx_convert`` (C++ on CPU; Triton and
  CUDA C++ on CUDA);
* ``reference-eager``: the same op on the pure-PyTorch reference (the oracle);
* ``requantize``: ``quantize(dequantize(anchor), dst)`` with slimops' own native kernels, what one
  does without Slice-and-Scale (equal bytes for FLOOR anchors of these inputs, see the README);
* ``torchao``: the same round trip through torchao's API (``to_dtype`` then ``to_mx``), FP pairs.

Bytes moved (for GB/s and the fraction of the copy roofline): the packed anchor and its scales
read, the packed target and its scales written, the same for every provider.

``python -m slimops.slicescale.bench [--quick] [--out DIR]`` prints (and writes as JSON) the SQNR
table: SQNR (dB) against the original values of ``convert(quantize(x, src), dst)`` and of
``quantize(x, dst)``, per pair, on Gaussian, Laplace and Student-t (3 d.o.f.) data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

from ..benchmarks.runner import Case, CompileBudget, Skip, Suite, first_line, quiet_peer
from ..mx.formats import get_format

PAIRS = [("mxint8", "mxint6"), ("mxint8", "mxint4"), ("mxint8", "mxint2"),
         ("mxfp8_e4m3", "mxfp6_e3m2"), ("mxfp8_e4m3", "mxfp6_e2m3"), ("mxfp8_e4m3", "mxfp4_e2m1"),
         ("mxfp8_e5m2", "mxfp6_e3m2"), ("mxfp8_e5m2", "mxfp4_e2m1")]
QUICK_PAIRS = [("mxint8", "mxint4"), ("mxfp8_e4m3", "mxfp4_e2m1")]
DISTRIBUTIONS = ("gaussian", "laplace", "student_t3")
SHAPES = {("cpu", False): (4096, 4096), ("cuda", False): (16384, 16384),
          ("cpu", True): (256, 1024), ("cuda", True): (2048, 4096)}
BLOCK = 32
PROVIDERS = ("reference-eager", "slimops-native", "slimops-triton", "requantize", "torchao")
SLIMOPS_BACKENDS = {"cpu": {"slimops-native": "native"},
                    "cuda": {"slimops-triton": "triton", "slimops-native": "native"}}
_TORCHAO_ELEM = {"mxfp8_e4m3": "float8_e4m3fn", "mxfp8_e5m2": "float8_e5m2", "mxfp6_e2m3": "fp6_e2m3",
                 "mxfp6_e3m2": "fp6_e3m2", "mxfp4_e2m1": "float4_e2m1fn_x2"}


# ----------------------------------------------------------------------------- the runner's suite


def parse_pairs(values) -> list:
    if not values:
        return None
    out = []
    for item in (v for val in values for v in val.split(",") if v):
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


def bytes_moved(case: Case) -> int:
    rows, length = math.prod(case.shape[:-1]), case.shape[-1]
    nblocks = rows * -(-length // BLOCK)
    return sum(rows * get_format(f).packed_bytes(length) + nblocks for f in (case.src, case.dst))


def make_inputs(case: Case, seed: int = 0) -> dict:
    import slimops

    g = torch.Generator(device=case.device).manual_seed(seed)
    x = torch.randn(case.shape, generator=g, dtype=torch.float32, device=case.device)
    try:
        anchor = slimops.mx.quantize(x, case.src, BLOCK)
    except Exception:
        with slimops.use_backend("reference"):
            anchor = slimops.mx.quantize(x, case.src, BLOCK)
    return {"x": x, "anchor": anchor}


def _convert_fn(backend: str, case: Case, inputs: dict):
    import slimops

    a = inputs["anchor"]

    def fn():
        with slimops.use_backend(backend):
            t = a.convert(case.dst)
        return t.data, t.scales

    return fn


def build(case: Case, provider: str, inputs: dict, budget: CompileBudget):
    import slimops
    from .._backend import resolve

    if provider.startswith("slimops-"):
        backend = SLIMOPS_BACKENDS[case.device].get(provider)
        if backend is None:
            raise Skip(f"{provider} does not run on {case.device}")
        try:
            with slimops.use_backend(backend):
                got = resolve("slicescale", "mx_convert", case.device)
        except RuntimeError as e:
            raise Skip(str(e)) from None
        if got != backend:
            raise Skip(f"backend {backend!r} is not available on {case.device} (resolves to {got!r})")
        return _convert_fn(backend, case, inputs), ""
    if provider == "reference-eager":
        return _convert_fn("reference", case, inputs), ""
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
        scale, data = to_mx(inputs["x"], src_e, BLOCK)

        def fn():
            s2, d2 = to_mx(to_dtype(data, scale, src_e, BLOCK, torch.float32), dst_e, BLOCK)
            return d2.view(torch.uint8), s2.view(torch.uint8)

        return fn, "to_mx(to_dtype(anchor))" + (", fp6 one per byte" if get_format(case.dst).bits == 6 else "")
    raise Skip(f"unknown provider {provider}")


class SliceScaleSuite(Suite):
    name = "slicescale"
    title = "slimops Slice-and-Scale (mx_convert)"
    providers = PROVIDERS
    oracle = "reference-eager"
    speedups = {"speedup_vs_requantize": "requantize", "speedup_vs_torchao": "torchao"}
    case_columns = ("src", "dst", "shape")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("slicescale suite")
        g.add_argument("--pairs", nargs="+", help="SRC:DST pairs for mx_convert (default: every pair; "
                                                   "--quick: mxint8:mxint4 mxfp8_e4m3:mxfp4_e2m1)")

    def check_arguments(self, args: argparse.Namespace) -> None:
        parse_pairs(getattr(args, "pairs", None))

    def select_op(self, args: argparse.Namespace, op: str) -> None:
        if op != "slicescale_mx_convert" and op != "mx_convert":
            raise SystemExit(f"slimops: unknown slicescale op {op!r}; expected mx_convert")

    def cases(self, args: argparse.Namespace, device: str) -> list:
        shape = SHAPES[(device, bool(args.quick))]
        if getattr(args, "shape", None):
            from ..mx.bench import parse_shape

            shape = parse_shape(args.shape)
        pairs = parse_pairs(getattr(args, "pairs", None)) or (QUICK_PAIRS if args.quick else PAIRS)
        return [Case(device, {"src": s, "dst": d, "shape": tuple(shape)}) for s, d in pairs]

    def providers_for(self, device: str) -> list:
        return [p for p in PROVIDERS if not p.startswith("slimops-") or p in SLIMOPS_BACKENDS[device]]

    def inputs(self, case: Case) -> dict:
        return make_inputs(case)

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        return build(case, provider, inputs, budget)

    def work(self, case: Case) -> int:
        return bytes_moved(case)

    def compare(self, case: Case, provider: str, out, oracle_out):
        if provider == "torchao" and get_format(case.dst).bits == 6:
            return None  # torchao keeps fp6 one per byte
        return super().compare(case, provider, out, oracle_out)


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
