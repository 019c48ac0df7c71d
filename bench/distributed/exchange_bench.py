"""Halo-exchange microbenchmark: time and bytes of one exchange per codec and world size (gloo, loopback).

    .venv/bin/python bench/distributed/exchange_bench.py --out DIR [--worlds 2 4] [--rows 4000] [--features 128]

Each rank sends ``rows`` rows of width ``features`` to every other rank (all at
once) and receives as many; a run is encode + transfer + decode. The time of a
repetition is the slowest rank's (max over ranks), reported as the median over
repetitions; bytes are what each rank hands to torch.distributed. Written to
DIR/exchange.json and printed as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

CODECS = ("none", "mxfp8", "mxint8", "mxfp4", "mxint4", "mxint2", "int8", "int4", "int2")


def _worker(rank, world, rows, features, reps):
    import torch
    import torch.distributed as dist

    from slimops.distributed.codecs import get_codec
    from slimops.distributed.comm import Comm

    comm = Comm(rank, world, 120.0)
    x = torch.randn(rows, features, generator=torch.Generator().manual_seed(rank))
    peers = [p for p in range(world) if p != rank]
    out = {}
    for name in CODECS:
        codec = get_codec(name)
        times = []
        for rep in range(reps + 1):
            dist.barrier()
            t = time.perf_counter()
            before = comm.bytes["halo"]
            bufs = comm.sendrecv({p: codec.encode(x, rep) for p in peers},
                                 {p: codec.nbytes(rows, features) for p in peers},
                                 shapes={p: (rows, features) for p in peers},
                                 recv_shapes={p: (rows, features) for p in peers})
            for p in peers:
                codec.decode(bufs[p], rows, features)
            dt = torch.tensor([time.perf_counter() - t])
            dist.all_reduce(dt, op=dist.ReduceOp.MAX)  # the slowest rank's time
            if rep:  # the first is a warm-up
                times.append(float(dt))
            sent = comm.bytes["halo"] - before
        out[name] = {"median_s": statistics.median(times), "p20_s": sorted(times)[len(times) // 5],
                     "p80_s": sorted(times)[(4 * len(times)) // 5], "bytes_per_rank": sent}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join("bench", "reports", "distributed-cpu-2core"))
    ap.add_argument("--worlds", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    import platform

    import torch

    from slimops.distributed.launch import spawn

    res = {"env": {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                   "cpus": os.cpu_count(), "backend": "gloo", "transport": "loopback"},
           "rows": a.rows, "features": a.features, "worlds": {}}
    lines = [f"| W | codec | median ms (slowest rank) | p20-p80 ms | bytes per rank | vs none |", "|---|---|---|---|---|---|"]
    for w in a.worlds:
        r = spawn(_worker, w, a.rows, a.features, a.reps, timeout=1800, collective_timeout=300)[0]
        res["worlds"][w] = r
        base = r["none"]["bytes_per_rank"]
        for name, v in r.items():
            lines.append(f"| {w} | {name} | {1e3 * v['median_s']:.2f} | {1e3 * v['p20_s']:.2f}-{1e3 * v['p80_s']:.2f}"
                         f" | {v['bytes_per_rank']} | {base / v['bytes_per_rank']:.2f}x fewer |")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "exchange.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = "\n".join(lines)
    with open(os.path.join(a.out, "exchange.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
