"""Issue 19, part 2: a large synthetic graph, partitioned once into shards, trained at W = 1, 2, 4 and 8.

    nice -n 19 .venv/bin/python bench/distributed/scale.py run [--sizes 250000 ... 2000000] [--worlds 1 2 4 8]
    .venv/bin/python bench/distributed/scale.py report

For every size, ``slimops partition`` (METIS) writes one shard per rank for each W (plans for GCN and GAT),
under ``--shards`` (default ``/tmp/slimops-scale-shards``, outside the repository); then every (W, model,
mode) is one torchrun launch (``--shards``, 3 epochs, no compression) whose OUT.json is kept under
``OUT/runs/``. Finished runs are skipped, so the sweep resumes. Each launch is alone on the machine's memory:
its peak is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "..", "reports", "distributed-scale")
GRAPH = ["--dataset", "synthetic", "--degree", "16", "--features", "128", "--classes", "8"]
MODELS = {"gcn": ["--model", "gcn", "--hidden", "128"],
          "gat": ["--model", "gat", "--heads", "8", "--hidden", "16", "--attn-dropout", "0.6"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def shard_dir(a, nodes: int, world: int) -> str:
    return os.path.join(a.shards, f"n{nodes}-w{world}")


def write_shards(a, nodes: int, world: int) -> None:
    d = shard_dir(a, nodes, world)
    if os.path.exists(os.path.join(d, "meta.json")) and set(a.models) <= set(json.load(open(
            os.path.join(d, "meta.json")))["norms"]):
        return
    cmd = [sys.executable, "-m", "slimops", "partition", *GRAPH, "--nodes", str(nodes), "--world", str(world),
           "--partitioner", "metis", "--seed", "0", "--norm", *a.models, "--out", d]
    print(" ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=_env(), cwd=ROOT)


def _available() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))


def wait_for_memory(a, nodes: int, world: int, model: str) -> None:
    """The machine is shared and has no swap: wait until it has what the launch should need (W = 1's training
    peak at this size, plus the floor of every further process, plus a fifth), so that it never meets the
    OOM killer (the launch itself, or someone else's process)."""
    ref = os.path.join(a.out, "runs", f"n{nodes}-w1-{model}-all.json")
    if world == 1 or not os.path.exists(ref):
        return
    with open(ref) as f:
        r = json.load(f)
    need = 1.2 * max(r["peak_mem_bytes"]) + world * max(r["rss_floor_bytes"])
    while _available() < need:
        print(f"waiting for {need / 2**30:.1f} GiB of memory ({_available() / 2**30:.1f} available)", flush=True)
        time.sleep(60)


def launch(a, tag: str, nodes: int, world: int, model: str, mode: str) -> None:
    out = os.path.join(a.out, "runs", tag + ".json")
    if os.path.exists(out):
        return
    wait_for_memory(a, nodes, world, model)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world), "--master-addr",
           "127.0.0.1", "--master-port", str(_free_port()), "-m", "slimops.distributed.train",
           "--shards", shard_dir(a, nodes, world), *MODELS[model], "--mode", mode, "--codec", "none",
           "--epochs", str(a.epochs), "--seed", "0", "--timeout", "1800", "--quiet", "--report", out + ".tmp"]
    if os.path.exists(out + ".tmp"):  # a launch whose driver was stopped: its report, as it wrote it
        p = subprocess.CompletedProcess(cmd, "unknown (driver restarted)", "", "")
    else:
        p = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True)
    if os.path.exists(out + ".tmp"):  # the report is written once training finished, whatever teardown does
        with open(out + ".tmp") as f:
            r = json.load(f)
        r["launch"] = {"returncode": p.returncode, "stderr_tail": p.stderr[-2000:]}
        r.pop("history", None)
        with open(out, "w") as f:
            json.dump(r, f)
        os.remove(out + ".tmp")
        print(f"{tag}: rc {p.returncode}, {statistics.median(r['epoch_seconds'][1:] or r['epoch_seconds']):.2f} "
              f"s/epoch", flush=True)
    else:
        print(f"{tag}: FAILED rc {p.returncode}\n{p.stderr[-3000:]}", flush=True)
        with open(os.path.join(a.out, "runs", tag + ".failed.txt"), "w") as f:
            f.write(f"returncode {p.returncode}\n{p.stderr[-20000:]}")


def run(a) -> None:
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    for nodes in a.sizes:
        for world in a.worlds:
            write_shards(a, nodes, world)
            meta = os.path.join(a.out, "runs", f"partition-n{nodes}-w{world}.json")
            if not os.path.exists(meta):
                with open(os.path.join(shard_dir(a, nodes, world), "meta.json")) as f, open(meta, "w") as g:
                    g.write(f.read())
            for model in a.models:
                for mode in a.modes:
                    launch(a, f"n{nodes}-w{world}-{model}-{mode}", nodes, world, model, mode)


# ----------------------------------------------------------------------------- report


def _mb(b) -> float:
    return b / 2**20


def report(a) -> None:
    d = os.path.join(a.out, "runs")
    runs = {f[:-5]: json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d))
            if f.endswith(".json") and not f.startswith("partition-")}
    parts = {f[10:-5]: json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d))
             if f.startswith("partition-")}
    lines = []
    sizes = sorted({int(k.split("-")[0][1:]) for k in runs})
    for model in ("gcn", "gat"):
        for nodes in sizes:
            rows = [(k, r) for k, r in runs.items() if k.startswith(f"n{nodes}-") and f"-{model}-" in k]
            if not rows:
                continue
            lines += [f"\n### {model.upper()}, {nodes:,} nodes (per rank: the largest over ranks)\n",
                      "| W | mode | nodes / rank | halo rows / rank | saved for backward (MB) | floor RSS (MB) | "
                      "setup peak above floor (MB) | training peak above floor (MB) | s / epoch | halo MB / epoch "
                      "/ rank | launch rc |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            for k, r in sorted(rows, key=lambda kv: (kv[1]["world_size"], kv[1]["args"]["mode"])):
                floor = r["rss_floor_bytes"]
                setup = max(p - f for p, f in zip(r["rss_setup_peak_bytes"], floor))
                train = max(p - f for p, f in zip(r["peak_mem_bytes"], floor))
                ep = statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"])
                lines.append(f"| {r['world_size']} | {r['args']['mode']} | {max(r['nodes_per_rank']):,} | "
                             f"{max(r['halo_rows_per_rank']):,} | {_mb(max(r['peak_saved_bytes'])):.0f} | "
                             f"{_mb(max(floor)):.0f} | {_mb(setup):.0f} | {_mb(train):.0f} | {ep:.2f} | "
                             f"{_mb(max(r['bytes_sent_per_rank']) / r['epochs']):.1f} | "
                             f"{r.get('launch', {}).get('returncode', '')} |")
    if parts:
        lines += ["\n### Partitioning once (`slimops partition`, METIS, plans for GCN and GAT)\n",
                  "| nodes | W | edges | load s | METIS s | METIS peak above its start (MB) | rows s | GCN plans s | "
                  "GAT plans s | peak RSS of the command (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for k, m in sorted(parts.items(), key=lambda kv: (kv[1]["num_nodes"], kv[1]["world"])):
            ph = m["phases"]
            peak = max(p["rss_peak_bytes"] for p in ph.values())
            lines.append(f"| {m['num_nodes']:,} | {m['world']} | {m['num_edges']:,} | {ph['load']['seconds']:.1f} | "
                         f"{ph['partition']['seconds']:.1f} | "
                         f"{_mb(ph['partition']['rss_peak_bytes'] - ph['partition']['rss_before_bytes']):.0f} | "
                         f"{ph['rows']['seconds']:.1f} | {ph.get('plans_gcn', {}).get('seconds', float('nan')):.1f} | "
                         f"{ph.get('plans_gat', {}).get('seconds', float('nan')):.1f} | {_mb(peak):.0f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "tables.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("run", "report"))
    p.add_argument("--out", default=OUT)
    p.add_argument("--shards", default="/tmp/slimops-scale-shards")
    p.add_argument("--sizes", type=int, nargs="+", default=[250_000, 500_000, 1_000_000, 2_000_000])
    p.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--models", nargs="+", default=["gcn", "gat"])
    p.add_argument("--modes", nargs="+", default=["sar", "all"])
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    {"run": run, "report": report}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
