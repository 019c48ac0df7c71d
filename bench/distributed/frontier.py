"""Issue 19, part 1: VARCO on its own terms, accuracy against total halo bytes, fixed ratios against schedules.

    nice -n 19 .venv/bin/python bench/distributed/frontier.py run [--settings NAME ...] [--root DIR]
    .venv/bin/python bench/distributed/frontier.py tune       # the learned codec's own settings (pilot)
    .venv/bin/python bench/distributed/frontier.py report     # tables.md + one plot per setting

Every run is ``slimops.distributed.train`` with the CLI's arguments, 200 epochs, W local processes (gloo
over loopback); its OUT.json (without the per-epoch history, with the bytes of every epoch) is kept under
``OUT/runs/`` as soon as it finishes, and runs already there are skipped, so the sweep resumes where it
stopped. Settings run in priority order (``SETTINGS``), seeds 0-2 of every configuration before seeds 3-4,
so that a setting cut short still has 3 seeds of everything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "reports", "distributed-varco")
LEARNED_RATIOS = (2, 4, 8, 16, 32, 64, 128)
MX_FIXED = ("none", "mxfp8", "mxint8", "mxfp6", "mxfp4", "mxint4", "mxint2", "int8", "int4", "int2")
SCHEDULED = ("exp", "linear")
LEARNED_STARTS = (8, 32, 128)  # schedules of the learned codec: r(t) from R0 down to 1
MX_STARTS = ("mxint2", "mxint4", "mxfp4", "int2")  # schedules on the ladders, from these rungs


CORE = ("none", "mxint8 fixed", "mxint4 fixed", "mxint2 fixed", "int2 fixed", "mxint2 exp", "mxint2 linear",
        "learned/4 fixed", "learned/16 fixed", "learned/64 fixed", "learned/128 exp", "learned/128 linear",
        "learned/32 exp", "learned/32 linear")  # run first in every setting, for every seed


def configs() -> list:
    """(label, codec, schedule, ratio) of every point of a setting."""
    out = [(c if c == "none" else f"{c} fixed", c, "fixed", 8.0) for c in MX_FIXED]
    out += [(f"learned/{r} fixed", "learned", "fixed", float(r)) for r in LEARNED_RATIOS]
    out += [(f"learned/{r} {s}", "learned", s, float(r)) for s in SCHEDULED for r in LEARNED_STARTS]
    out += [(f"{c} {s}", c, s, 8.0) for s in SCHEDULED for c in MX_STARTS]
    return out


# The models: every configuration of a setting trains the same one. Hidden width 128 (GCN) and 8 heads x 16
# (GAT): halo rows 128 wide, so a learned ratio up to 128 keeps a latent of 128 / R >= 1 units.
GCN = ["--model", "gcn", "--hidden", "128", "--dropout", "0.5"]
GAT = ["--model", "gat", "--heads", "8", "--hidden", "16", "--dropout", "0.6", "--attn-dropout", "0.6"]
# The learned codec's own settings, from `tune` (README): the last layer's logits uncompressed (SAR's choice;
# +8-14 points); the codec decayed like the model (without decay fixed ratios lose 2.6 points, schedules
# gain nothing).
LEARNED = ["--learned-last", "fp32"]

# name: (dataset, model args, world, partitioner, layers, seeds), in priority order
SETTINGS = {
    "cora-gcn-w4-random-l2": ("cora", GCN, 4, "random", 2, 5),
    "cora-gcn-w8-random-l2": ("cora", GCN, 8, "random", 2, 5),
    "cora-gcn-w4-random-l3": ("cora", GCN, 4, "random", 3, 5),
    "cora-gat-w4-random-l2": ("cora", GAT, 4, "random", 2, 3),
    "citeseer-gcn-w4-random-l2": ("citeseer", GCN, 4, "random", 2, 3),
    "cora-gcn-w4-metis-l2": ("cora", GCN, 4, "metis", 2, 3),
    "cora-gcn-w8-random-l3": ("cora", GCN, 8, "random", 3, 3),
    "citeseer-gcn-w8-random-l2": ("citeseer", GCN, 8, "random", 2, 3),
    "cora-gat-w8-random-l2": ("cora", GAT, 8, "random", 2, 3),
    "citeseer-gat-w4-random-l2": ("citeseer", GAT, 4, "random", 2, 3),
    "citeseer-gcn-w4-metis-l2": ("citeseer", GCN, 4, "metis", 2, 3),
}


def argv_of(setting: str, codec: str, schedule: str, ratio: float, seed: int, root: str, epochs: int,
            extra=()) -> list:
    dataset, model, world, partitioner, layers, _ = SETTINGS[setting]
    argv = ["--dataset", dataset, "--root", root, *model, "--layers", str(layers), "--codec", codec,
            "--schedule", schedule, "--ratio", str(ratio), "--mode", "all", "--partitioner", partitioner,
            "--epochs", str(epochs), "--seed", str(seed), "--timeout", "300", "--keep-graph", "--quiet"]
    return argv + (LEARNED if codec == "learned" else []) + list(extra)


def tag_of(setting, codec, schedule, ratio, seed) -> str:
    r = f"-r{ratio:g}" if codec == "learned" else ""
    return f"{setting}--{codec}{r}-{schedule}-s{seed}"


def _worker(rank, world, todo, out_dir):
    """Every run of ``todo`` in one process group (the graph is loaded once); rank 0 writes each OUT.json."""
    from slimops.distributed.train import main

    for tag, argv in todo:
        t = time.time()
        res = main(argv)
        if rank == 0:
            res["bytes_per_epoch_codec"] = [h["codec"] for h in res.pop("history")]
            path = os.path.join(out_dir, "runs", tag + ".json")
            with open(path + ".tmp", "w") as f:
                json.dump(res, f)
            os.replace(path + ".tmp", path)
            print(f"{tag}: test {res['test_acc']:.3f} bytes {res['bytes_sent']} ({time.time() - t:.0f} s)",
                  flush=True)
    return None


def run_all(out_dir: str, runs: list, world: int) -> None:
    """Run every (tag, argv) not yet under ``out_dir/runs``, in one spawn of ``world`` processes."""
    from slimops._ranks import spawn_ranks

    os.makedirs(os.path.join(out_dir, "runs"), exist_ok=True)
    todo = [(t, a) for t, a in runs if not os.path.exists(os.path.join(out_dir, "runs", t + ".json"))]
    if todo:
        spawn_ranks(_worker, world, (todo, out_dir), timeout_s=600, run_timeout_s=12 * 3600)


def run(a) -> None:
    for setting in a.settings or list(SETTINGS):
        seeds = SETTINGS[setting][5] if a.seeds is None else a.seeds
        chosen = [(label, c, s, r) for label, c, s, r in configs()
                  if (a.codecs == "all" or (c == "learned") == (a.codecs == "learned"))
                  and (label in CORE or not a.core_only)]
        # priority: the core configurations' first 3 seeds, then the others' first 3 seeds, then seeds 3-4
        order = sorted(((label not in CORE) if seed < 3 else 2, seed, i) for seed in range(seeds)
                       for i, (label, *_) in enumerate(chosen))
        runs = [(tag_of(setting, c, s, r, seed), argv_of(setting, c, s, r, seed, a.root, a.epochs))
                for _, seed, i in order for _, c, s, r in [chosen[i]]]
        print(f"== {setting}: {len(runs)} runs", flush=True)
        run_all(a.out, runs, SETTINGS[setting][2])


# The pilot behind LEARNED: Cora GCN W = 4 random, the learned codec fixed at R = 32 and scheduled (exp,
# linear) from R0 = 128, seeds 0-1, next to full communication.
TUNE = {
    "as issue 10 (codec decayed, logits encoded)": ["--codec-weight-decay", "0.0005", "--learned-last", "codec"],
    "codec not decayed, logits encoded": ["--codec-weight-decay", "0", "--learned-last", "codec"],
    "codec not decayed, logits fp32": ["--codec-weight-decay", "0", "--learned-last", "fp32"],
    "codec decayed, logits fp32": ["--codec-weight-decay", "0.0005", "--learned-last", "fp32"],
}


def tune(a) -> None:
    setting = "cora-gcn-w4-random-l2"
    runs = []
    for seed in (0, 1):
        runs.append((f"tune-{tag_of(setting, 'none', 'fixed', 8.0, seed)}",
                     argv_of(setting, "none", "fixed", 8.0, seed, a.root, a.epochs)))
        for i, extra in enumerate(TUNE.values()):
            for sched, r0 in (("fixed", 32.0), ("exp", 128.0), ("linear", 128.0)):
                argv = argv_of(setting, "learned", sched, r0, seed, a.root, a.epochs, extra)
                runs.append((f"tune{i}-{tag_of(setting, 'learned', sched, r0, seed)}", argv))
    run_all(a.out, runs, 4)


# ----------------------------------------------------------------------------- report


def _load(out_dir: str) -> dict:
    d = os.path.join(out_dir, "runs")
    if not os.path.isdir(d):
        return {}
    return {f[:-5]: json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d)) if f.endswith(".json")}


def _widths(r: dict) -> list:
    """Halo row width of every layer: hidden (GCN) or heads x hidden (GAT), then the classes."""
    a = r["args"]
    hidden = a["hidden"] * (a["heads"] if a["model"] == "gat" else 1)
    classes = {"cora": 7, "citeseer": 6}[a["dataset"]]
    return [hidden] * (a["layers"] - 1) + [classes]


def effective(r: dict) -> str:
    """The learned codec's latent per layer: ``f->k`` (ratio f / k); ``fp32`` for an uncompressed last layer."""
    a = r["args"]
    out = []
    for i, f in enumerate(_widths(r)):
        if i == len(_widths(r)) - 1 and a.get("learned_last") == "fp32":
            out.append(f"{f} fp32")
        else:
            k = max(1, min(f, math.ceil(f / a["ratio"])))
            out.append(f"{f}->{k}")
    return ", ".join(out)


def summarize(runs: dict, setting: str) -> list:
    """One row per configuration: label, kind, MB, mean and std of test and val accuracy, seeds, effective."""
    by_config = {}
    for tag, r in runs.items():
        by_config.setdefault(tag.rsplit("-s", 1)[0], []).append(r)
    rows = []
    for label, codec, sched, ratio in configs():
        rs = by_config.get(tag_of(setting, codec, sched, ratio, 0).rsplit("-s", 1)[0], [])
        if not rs:
            continue
        acc = [100 * r["test_acc"] for r in rs]
        val = [100 * r["val_acc"] for r in rs]
        rows.append({"label": label, "codec": codec, "schedule": sched, "ratio": ratio,
                     "kind": "full" if codec == "none" else ("learned" if codec == "learned" else
                                                              ("int" if codec.startswith("int") else "mx")),
                     "mb": statistics.mean(r["bytes_sent"] for r in rs) / 1e6,
                     "acc": statistics.mean(acc), "sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                     "val": statistics.mean(val), "n": len(rs), "accs": acc,
                     "eff": effective(rs[0]) if codec == "learned" else ""})
    return rows


def verdicts(rows: list) -> list:
    """For every schedule point: the best fixed point at no more bytes, among the same codec family (learned
    against learned, ladders against MX / int) and among all fixed points, with the difference and its
    standard error (sd_a^2 / n_a + sd_b^2 / n_b)^0.5."""
    fixed = [r for r in rows if r["schedule"] == "fixed"]
    out = []
    for v in (r for r in rows if r["schedule"] != "fixed"):
        fam = [f for f in fixed if (f["codec"] == "learned") == (v["codec"] == "learned") or f["codec"] == "none"]
        res = {"point": v}
        for name, pool in (("family", fam), ("all", fixed)):
            under = [f for f in pool if f["mb"] <= v["mb"] * 1.0001]
            if not under:
                res[name] = None
                continue
            best = max(under, key=lambda f: f["acc"])
            se = math.sqrt(best["sd"] ** 2 / best["n"] + v["sd"] ** 2 / v["n"])
            res[name] = (best, v["acc"] - best["acc"], se, min(best["n"], v["n"]))
        out.append(res)
    return out


def _fmt_verdict(x) -> str:
    if x is None:
        return "no fixed point at <= its bytes"
    best, d, se, n = x
    word = ("above" if d > 2 * se else ("below" if d < -2 * se else "within noise of")) if n > 1 else \
        "1 seed, no verdict:"
    return f"{d:+.2f} ± {se:.2f} ({word} {best['label']}, {best['acc']:.2f} at {best['mb']:.2f} MB)"


def report(a) -> None:
    runs = _load(a.out)
    lines, plots = [], []
    for setting, (dataset, model, world, partitioner, layers, _) in SETTINGS.items():
        rows = summarize(runs, setting)
        if not rows:
            continue
        full = next((r["mb"] for r in rows if r["codec"] == "none"), float("nan"))
        lines += [f"\n### {setting}: {dataset}, {model[1].upper()}, W = {world}, {partitioner} partition, "
                  f"{layers} layers, {a.epochs} epochs\n",
                  "| config | learned latent per layer | test acc (mean ± sd) | val acc | halo MB (fwd+bwd, all ranks) |"
                  " bytes vs full | seeds |", "|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: -r["mb"]):
            lines.append(f"| {r['label']} | {r['eff']} | {r['acc']:.2f} ± {r['sd']:.2f} | {r['val']:.2f} | "
                         f"{r['mb']:.3f} | {full / r['mb']:.1f}x fewer | {r['n']} |")
        lines += ["", "Schedules against the best fixed point at no more bytes (difference in test accuracy points ± "
                      "its standard error; above / below: by more than 2 standard errors):", "",
                  "| schedule | MB | acc | vs best fixed of its family | vs best fixed of all |", "|---|---|---|---|---|"]
        for v in verdicts(rows):
            p = v["point"]
            lines.append(f"| {p['label']} | {p['mb']:.3f} | {p['acc']:.2f} | {_fmt_verdict(v['family'])} | "
                         f"{_fmt_verdict(v['all'])} |")
        plots.append((setting, rows))
    lines += _tune_table(runs)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.out, "tables.md"), "w") as f:
        f.write(text)
    print(text)
    _plot(a.out, plots)


def _tune_table(runs: dict) -> list:
    """The pilot: test accuracy per variant of the learned codec's settings and configuration, per seed."""
    rows = {}
    for tag, r in runs.items():
        if tag.startswith("tune"):
            variant, rest = tag.split("-", 1)
            config, seed = rest.split("--", 1)[1].rsplit("-s", 1)
            rows.setdefault((variant, config), {})[int(seed)] = (100 * r["test_acc"], r["bytes_sent"] / 1e6)
    if not rows:
        return []
    names = {f"tune{i}": name for i, name in enumerate(TUNE)} | {"tune": "full communication"}
    out = ["\n### Pilot: the learned codec's own settings (cora-gcn-w4-random-l2, test accuracy per seed)\n",
           "| settings | config | halo MB | seed 0 | seed 1 | mean |", "|---|---|---|---|---|---|"]
    for (variant, config), by_seed in sorted(rows.items()):
        accs = [by_seed[s][0] for s in sorted(by_seed)]
        out.append(f"| {names.get(variant, variant)} | {config} | {statistics.mean(b for _, b in by_seed.values()):.1f}"
                   f" | " + " | ".join(f"{by_seed[s][0]:.1f}" if s in by_seed else "" for s in (0, 1)) +
                   f" | {statistics.mean(accs):.1f} |")
    return out


def _plot(out_dir: str, plots: list) -> None:
    if not plots:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"full": "k", "mx": "C0", "int": "C2", "learned": "C1"}
    for setting, rows in plots:
        fig, ax = plt.subplots(figsize=(9, 6))
        for r in rows:
            fixed = r["schedule"] == "fixed"
            marker = "o" if fixed else ("s" if r["schedule"] == "exp" else "^")
            ax.errorbar(r["mb"], r["acc"], yerr=r["sd"], fmt=marker, capsize=2, color=colors[r["kind"]],
                        mfc=colors[r["kind"]] if fixed else "white", ms=6)
            ax.annotate(r["label"].replace(" fixed", ""), (r["mb"], r["acc"]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("halo bytes over training, all ranks, forward + backward (MB, log)")
        ax.set_ylabel("test accuracy at best validation (%), mean ± sd over seeds")
        ax.set_title(f"{setting}: fixed (filled) vs exp (squares) / linear (triangles);\n"
                     "learned orange, MX blue, per-row int green, full black", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, f"frontier-{setting}.png"), dpi=110)
        plt.close(fig)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("run", "tune", "report"))
    p.add_argument("--root", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "planetoid"))
    p.add_argument("--out", default=OUT)
    p.add_argument("--settings", nargs="+", choices=list(SETTINGS))
    p.add_argument("--seeds", type=int, default=None, help="run: seeds per setting (default: the setting's)")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--core-only", action="store_true", help="run: only the CORE configurations")
    p.add_argument("--codecs", choices=("all", "learned", "wire"), default="all",
                   help="run: every configuration, the learned codec's only, or the wire codecs' (MX, int) only")
    a = p.parse_args()
    {"run": run, "tune": tune, "report": report}[a.what](a)


if __name__ == "__main__":
    sys.exit(main())
