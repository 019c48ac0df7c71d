"""Benchmark suite of the slicescale family: mx_convert bandwidth and the cost of double rounding.

* **bandwidth**: packed -> packed conversion of a (4096, 4096) anchor for every pair, per provider:
  ``slimops`` (``mx_convert``, the active backend), ``requantize`` (``quantize(dequantize(anchor))``
  with slimops' own kernels, what one does without Slice-and-Scale), ``torchao`` (the same through
  torchao's MXTensor: ``to_mx(anchor.dequantize(), dst)``, FP pairs its API holds). Reported: median
  ms, GB/s counting the packed bytes read plus written (data and scales), and the fraction of the
  device's measured copy bandwidth (``dst.copy_(src)``, read + write).
* **sqnr**: SQNR (dB) against the original values of ``convert(quantize(x, src), dst)`` and of
  ``quantize(x, dst)`` directly, per pair, on Gaussian, Laplace and Student-t (3 d.o.f., heavy
  tailed) data; their difference is the cost of rounding twice.

Run alone: ``python -m slimops.slicescale.bench [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

PAIRS = [("mxint8", "mxint6"), ("mxint8", "mxint4"), ("mxint8", "mxint2"),
         ("mxfp8_e4m3", "mxfp6_e3m2"), ("mxfp8_e4m3", "mxfp6_e2m3"), ("mxfp8_e4m3", "mxfp4_e2m1"),
         ("mxfp8_e5m2", "mxfp6_e3m2"), ("mxfp8_e5m2", "mxfp4_e2m1")]
DISTRIBUTIONS = ("gaussian", "laplace", "student_t3")


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


def sqnr_rows(shape=(1024, 1024)) -> list[dict]:
    import slimops

    rows = []
    for dist in DISTRIBUTIONS:
        x = sample(dist, shape)
        for src, dst in PAIRS:
            direct = slimops.mx.quantize(x, dst).dequantize()
            conv = slimops.mx.quantize(x, src).convert(dst).dequantize()
            a, b = sqnr_db(x, direct), sqnr_db(x, conv)
            rows.append({"suite": "slicescale", "kind": "sqnr", "dist": dist, "pair": f"{src}->{dst}",
                         "sqnr_direct_db": round(a, 3), "sqnr_convert_db": round(b, 3),
                         "double_rounding_cost_db": round(a - b, 3)})
    return rows


def bandwidth_rows(device="cpu", shape=(4096, 4096), budget_s: float = 0.5, quick: bool = False,
                   copy_nbytes: int | None = None) -> list[dict]:
    import slimops
    from slimops.benchmarks.harness import copy_bandwidth, device_name, measure

    dev = torch.device(device)
    copy_gbs = copy_bandwidth(dev, copy_nbytes)
    x = torch.randn(shape, device=dev)
    rows = []
    pairs = PAIRS[1:2] + PAIRS[5:6] if quick else PAIRS
    try:
        from torchao.prototype.mx_formats.mx_tensor import MXTensor as TorchaoMX

        from .interop import _torchao_dtype
    except Exception:  # torchao is optional
        TorchaoMX = None
    for src, dst in pairs:
        a = slimops.mx.quantize(x, src)
        out = a.convert(dst)
        nbytes = a.nbytes + out.nbytes
        providers = {
            "slimops": lambda a=a, dst=dst: a.convert(dst),
            "requantize": lambda a=a, dst=dst: slimops.mx.quantize(a.dequantize(torch.float32), dst),
        }
        if TorchaoMX is not None and not src.startswith("mxint"):
            ta = TorchaoMX.to_mx(x, _torchao_dtype(src), 32)
            providers["torchao"] = lambda ta=ta, dst=dst: TorchaoMX.to_mx(ta.dequantize(torch.float32),
                                                                           _torchao_dtype(dst), 32)
        for name, fn in providers.items():
            t = measure(fn, dev, budget_s=budget_s, slow_s=2.0)
            gbs = nbytes / (t.median_ms * 1e-3) / 1e9
            rows.append({"suite": "slicescale", "kind": "bandwidth", "device": device_name(dev), "op": "mx_convert",
                         "pair": f"{src}->{dst}", "provider": name, "shape": "x".join(map(str, shape)),
                         "median_ms": round(t.median_ms, 4), "p20_ms": round(t.q20_ms, 4),
                         "p80_ms": round(t.q80_ms, 4), "packed_bytes": nbytes, "gbps": round(gbs, 3),
                         "copy_gbps": round(copy_gbs, 3), "frac_of_copy": round(gbs / copy_gbs, 4),
                         "backend": slimops.current_backend()})
    return rows


def format_rows(rows: list[dict]) -> str:
    out = []
    bw = [r for r in rows if r["kind"] == "bandwidth"]
    if bw:
        out.append(f"mx_convert, {bw[0]['shape']} on {bw[0]['device']} (copy: {bw[0]['copy_gbps']:.2f} GB/s)")
        out.append(f"{'pair':28} {'provider':11} {'ms':>9} {'GB/s':>8} {'of copy':>8}")
        for r in bw:
            out.append(f"{r['pair']:28} {r['provider']:11} {r['median_ms']:9.3f} {r['gbps']:8.2f} "
                       f"{100 * r['frac_of_copy']:7.1f}%")
    sq = [r for r in rows if r["kind"] == "sqnr"]
    if sq:
        out.append("")
        out.append("SQNR (dB) vs the original values: direct quantize, anchor + convert, cost of double rounding")
        out.append(f"{'dist':11} {'pair':28} {'direct':>8} {'convert':>8} {'cost':>7}")
        for r in sq:
            out.append(f"{r['dist']:11} {r['pair']:28} {r['sqnr_direct_db']:8.2f} {r['sqnr_convert_db']:8.2f} "
                       f"{r['double_rounding_cost_db']:7.3f}")
    return "\n".join(out)


def run(devices=("cpu",), quick: bool = False) -> list[dict]:
    """Every row of the suite (the entry point for the common runner)."""
    rows = []
    for d in devices:
        rows += bandwidth_rows(d, shape=(1024, 1024) if quick else (4096, 4096), quick=quick)
    rows += sqnr_rows((256, 256) if quick else (1024, 1024))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m slimops.slicescale.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"))
    p.add_argument("--out", default=None, help="directory for bench_slicescale.json")
    args = p.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
    rows = run(devices, args.quick)
    print(format_rows(rows))
    if args.out:
        from slimops.benchmarks.harness import environment

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_slicescale.json"), "w") as f:
            json.dump({"environment": environment(devices), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
