"""Before / after the distributed refactor (one launcher, the row codec's move, the comm layer), side by side.

Runs ``slimops.distributed.train`` under torchrun (4 workers on this machine, gloo over loopback) from two
checkouts in alternating order, round by round, and compares what each run reports: test accuracy, the
bytes sent in every epoch, the training seconds, and whether the launch ended cleanly (exit status 0, no
``terminate called`` from a rank).

    python refactor_ab.py OLD_CHECKOUT OUT_DIR [--rounds N] [--epochs N]

``OLD_CHECKOUT`` is a worktree of the earlier commit with its C++ module built in place, for example:

    git worktree add --detach /tmp/old e60159d
    cmake -S /tmp/old -B /tmp/old/build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH=$(.venv/bin/python -c 'import torch;print(torch.utils.cmake_prefix_path)') \
        -Dpybind11_DIR=$(.venv/bin/python -m pybind11 --cmakedir) -DPython_EXECUTABLE=.venv/bin/python
    cmake --build /tmp/old/build && cp /tmp/old/build/_C*.so /tmp/old/python/slimops/

The new side is the installed package. Both run with this environment's torch. Results go to
``OUT_DIR/launches.jsonl`` (one line per launch) and ``OUT_DIR/result.md``.
"""
import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = [  # (name, train arguments)
    ("none sar", ["--codec", "none", "--mode", "sar"]),
    ("mxint4 sar", ["--codec", "mxint4", "--mode", "sar"]),
    ("int4 all", ["--codec", "int4", "--mode", "all"]),
    ("mxint2 exp sar", ["--codec", "mxint2", "--schedule", "exp", "--mode", "sar"]),
    ("learned fixed all", ["--codec", "learned", "--mode", "all"]),
]
OLD_ENTRY = """import runpy, sys
# the editable install's import hook would find the new package first: drop it, then put the old one first
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
sys.path.insert(0, {path!r})
import slimops
assert slimops.__file__.startswith({path!r}), slimops.__file__
runpy.run_module("slimops.distributed.train", run_name="__main__", alter_sys=True)
"""


def launch(side, entry, args, out_dir, tag):
    report = os.path.join(out_dir, f"{tag}.json")
    target = [entry] if side == "old" else ["-m", "slimops.distributed.train"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4", *target,
           *args, "--report", report, "--quiet"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    rec = {"side": side, "tag": tag, "rc": p.returncode, "wall_s": wall,
           "terminate": "terminate called" in p.stderr + p.stdout}
    if os.path.exists(report):
        with open(report) as f:
            r = json.load(f)
        rec.update(test_acc=r["test_acc"], bytes_per_epoch=r["bytes_sent_per_epoch"],
                   train_seconds=r["train_seconds"], acc_per_epoch=[h["test_acc"] for h in r["history"]])
    else:
        rec["stderr_tail"] = p.stderr[-2000:]
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("out")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--stress", type=int, default=0,
                    help="then this many short launches per side (mxint2 exp, 5 epochs), alternating: teardown only")
    ap.add_argument("--stress-mode", choices=("sar", "all"), default="sar", help="the short launches' --mode")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "../../../../shared/data/planetoid"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    entry = os.path.join(a.out, "old_train.py")
    with open(entry, "w") as f:
        f.write(OLD_ENTRY.format(path=os.path.join(os.path.abspath(a.old), "python")))
    common = ["--dataset", "cora", "--root", os.path.abspath(a.root), "--model", "gcn", "--partitioner", "metis",
              "--epochs", str(a.epochs), "--seed", "0"]
    log = open(os.path.join(a.out, "launches.jsonl"), "a")
    for rnd in range(a.rounds):  # --rounds 0 --stress N runs only the short launches
        for i, (name, args) in enumerate(CONFIGS):
            order = ("old", "new") if (rnd + i) % 2 == 0 else ("new", "old")
            for side in order:
                tag = f"r{rnd}-{name.replace(' ', '_')}-{side}"
                rec = launch(side, entry, common + args, a.out, tag)
                rec.update(config=name, round=rnd)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(f"round {rnd} {name:18s} {side}: rc {rec['rc']} acc {rec.get('test_acc')} "
                      f"train {rec.get('train_seconds', float('nan')):.2f}s", flush=True)
    stress = common[:-4] + ["--epochs", "5", "--seed", "0", "--codec", "mxint2", "--schedule", "exp",
                              "--mode", a.stress_mode]
    for i in range(a.stress):
        for side in (("old", "new") if i % 2 == 0 else ("new", "old")):
            rec = launch(side, entry, stress, a.out, f"s{i}-{a.stress_mode}-{side}")
            rec.update(config=f"stress {a.stress_mode}", round=i)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(f"stress {i} {side}: rc {rec['rc']} terminate {rec['terminate']}", flush=True)
    log.close()
    summarize(a.out)


def summarize(out):
    recs = [json.loads(line) for line in open(os.path.join(out, "launches.jsonl"))]
    lines = ["| config | test acc before | test acc after | bytes per epoch identical | same acc every epoch "
             "| train s before (min) | train s after (min) | after / before | failed launches before | after |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in CONFIGS:
        side = {s: [r for r in recs if r["config"] == name and r["side"] == s] for s in ("old", "new")}
        done = {s: [r for r in side[s] if "test_acc" in r] for s in side}
        if not done["old"] or not done["new"]:
            continue
        ref = done["old"][0]
        same_bytes = all(r["bytes_per_epoch"] == ref["bytes_per_epoch"] for r in done["old"] + done["new"])
        same_acc = all(r["acc_per_epoch"] == ref["acc_per_epoch"] for r in done["old"] + done["new"])
        accs = {s: sorted({round(r["test_acc"], 4) for r in done[s]}) for s in side}
        tmin = {s: min(r["train_seconds"] for r in done[s]) for s in side}
        fails = {s: f"{sum(r['rc'] != 0 for r in side[s])} of {len(side[s])}" for s in side}
        lines.append(f"| {name} | {accs['old']} | {accs['new']} | {same_bytes} | {same_acc} | {tmin['old']:.2f} "
                     f"| {tmin['new']:.2f} | {tmin['new'] / tmin['old']:.3f} | {fails['old']} | {fails['new']} |")
    lines.append("")
    for label, sel in (("the rounds above", lambda r: not r["config"].startswith("stress")),
                       ("short launches, mxint2 exp, 5 epochs, SAR", lambda r: r["config"] in ("stress", "stress sar")),
                       ("short launches, mxint2 exp, 5 epochs, all-at-once", lambda r: r["config"] == "stress all"),
                       ("all launches", lambda r: True)):
        part = [r for r in recs if sel(r)]
        if not part:
            continue
        aborts = {s: sum(r["terminate"] for r in part if r["side"] == s) for s in ("old", "new")}
        failed = {s: sum(r["rc"] != 0 for r in part if r["side"] == s) for s in ("old", "new")}
        n = {s: sum(r["side"] == s for r in part) for s in ("old", "new")}
        lines.append(f"- {label}: launches with a rank's `terminate called` (SIGABRT) before {aborts['old']} of "
                     f"{n['old']}, after {aborts['new']} of {n['new']}; failed launches (non-zero status) before "
                     f"{failed['old']}, after {failed['new']}.")
    with open(os.path.join(out, "result.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
