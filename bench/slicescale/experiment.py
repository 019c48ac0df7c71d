"""Reproduce the claims of MF-QAT / Slice-and-Scale (Xu, Sharify, Mostafa, arXiv 2604.00529) on offline data.

Two tasks, both on data that ships with the tools (no download):

* **digits**: scikit-learn's 8x8 digits (1797 images), an MLP 64-256-256-10; metric: test accuracy (%).
* **charlm**: a character-level transformer LM (2 blocks, d=96, context 64, batch 24) on the text of
  Python's own help topics (``pydoc_data.topics``, ~465k characters); metric: validation loss
  (nats per character, lower is better).

Every Linear layer's weight is quantized (activations stay in float; embeddings and norms too).
Per task: a float model is trained (``pretrain``), then fine-tuned with QAT for ``finetune``
steps in several ways from the same start and the same batches:

* SF-QAT(f): single-format QAT at f, one run per format f;
* MF-QAT: multi-format QAT, one format drawn per step, uniformly, within a family:
  INT {mxint8, mxint6, mxint4, mxint2} and FP {mxfp8_e4m3, mxfp6_e2m3, mxfp4_e2m1};
* MF-QAT-sub: the same on a subset {mxint8, mxint4} / {mxfp8_e4m3, mxfp4_e2m1} (for claim 2).

Evaluated per format f (the numbers of the claims):

1. MF-QAT at f vs SF-QAT(f) at f (both weights quantized directly to f);
2. MF-QAT-sub at the formats it did not see (mxint6, mxint2, mxfp6_e2m3) vs SF-QAT(f);
3. MF-QAT through its anchor (mxint8 / mxfp8_e4m3) + Slice-and-Scale to f (``slimops.nn.MXLinear``,
   the deployment path) vs MF-QAT quantized directly to f;
4. PTQ: the float model quantized directly to f (no QAT).

Fixed seeds; prints a table and writes ``--out``/experiment.{json,md,png}.
Run: ``.venv/bin/python bench/slicescale/experiment.py [--quick] [--out bench/reports/slicescale]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

import slimops
import slimops.nn as snn
import slimops.qat as qat

INT = ["mxint8", "mxint6", "mxint4", "mxint2"]
FP = ["mxfp8_e4m3", "mxfp6_e2m3", "mxfp4_e2m1"]
FORMATS = INT + FP
SUB = {"int": ["mxint8", "mxint4"], "fp": ["mxfp8_e4m3", "mxfp4_e2m1"]}
ANCHOR = {"int": "mxint8", "fp": "mxfp8_e4m3"}


def family(fmt: str) -> str:
    return "int" if fmt.startswith("mxint") else "fp"


# ----------------------------------------------------------------------------- tasks


class Digits:
    name, metric, higher_is_better = "digits", "test accuracy %", True

    def __init__(self, seed: int):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = torch.tensor(d.data, dtype=torch.float32) / 16.0
        y = torch.tensor(d.target)
        xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
        self.xtr, self.ytr = torch.as_tensor(xtr), torch.as_tensor(ytr)
        self.xte, self.yte = torch.as_tensor(xte), torch.as_tensor(yte)
        self.lr, self.batch = 2e-3, 64

    def model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def batch_at(self, gen: torch.Generator):
        idx = torch.randint(0, len(self.xtr), (self.batch,), generator=gen)
        return self.xtr[idx], self.ytr[idx]

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model) -> float:
        model.eval()
        return (model(self.xte).argmax(-1) == self.yte).float().mean().item() * 100


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(a)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class CharLM(nn.Module):
    def __init__(self, vocab: int, d: int = 96, layers: int = 2, heads: int = 4, ctx: int = 64):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


class CharText:
    name, metric, higher_is_better = "charlm", "val loss (nats/char)", False

    def __init__(self, seed: int, chars: int = 300_000):
        import pydoc_data.topics as topics

        text = "\n".join(topics.topics[k] for k in sorted(topics.topics))[:chars]
        vocab = sorted(set(text))
        self.vocab = len(vocab)
        lut = {c: i for i, c in enumerate(vocab)}
        ids = torch.tensor([lut[c] for c in text], dtype=torch.long)
        n = int(len(ids) * 0.9)
        self.train, self.val = ids[:n], ids[n:]
        self.ctx, self.batch, self.lr = 64, 24, 3e-3
        g = torch.Generator().manual_seed(seed + 1)
        starts = torch.randint(0, len(self.val) - self.ctx - 1, (256,), generator=g)
        self.val_x = torch.stack([self.val[s:s + self.ctx] for s in starts])
        self.val_y = torch.stack([self.val[s + 1:s + self.ctx + 1] for s in starts])

    def model(self) -> nn.Module:
        return CharLM(self.vocab, ctx=self.ctx)

    def batch_at(self, gen: torch.Generator):
        s = torch.randint(0, len(self.train) - self.ctx - 1, (self.batch,), generator=gen)
        x = torch.stack([self.train[i:i + self.ctx] for i in s])
        y = torch.stack([self.train[i + 1:i + self.ctx + 1] for i in s])
        return x, y

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x).reshape(-1, self.vocab), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model) -> float:
        model.eval()
        return F.cross_entropy(model(self.val_x).reshape(-1, self.vocab), self.val_y.reshape(-1)).item()


# ----------------------------------------------------------------------------- training


def train(task, model, steps: int, seed: int, formats=None, lr=None):
    """``steps`` of Adam (cosine decay); with ``formats``, multi-/single-format QAT (one format per step)."""
    if formats:
        qat.prepare(model, formats, "uniform", seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr or task.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(steps, 1))))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        loss = task.loss(model, task.batch_at(gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model


def eval_direct(task, model, fmt) -> float:
    """Weights quantized straight to ``fmt`` (fake-quant forward of the QAT layers)."""
    m = copy.deepcopy(model)
    if not any(isinstance(x, qat.QATLinear) for x in m.modules()):
        qat.prepare(m, [fmt])
    m.eval()
    qat.set_format(m, fmt)
    return task.evaluate(m)


def eval_slice_and_scale(task, model, fmt) -> float:
    """The deployment path: anchor MXLinear layers (mxint8 / mxfp8_e4m3) switched to ``fmt`` by mx_convert."""
    m = qat.strip(copy.deepcopy(model))
    snn.convert_linears(m, fmt, anchor_fmt=ANCHOR[family(fmt)])
    return task.evaluate(m)


def run_task(task, pretrain: int, finetune: int, seed: int, log) -> dict:
    torch.manual_seed(seed)
    base = task.model()
    t0 = time.time()
    train(task, base, pretrain, seed)
    res = {"float": task.evaluate(base), "ptq": {}, "sf": {}, "mf": {}, "mf_ss": {}, "sub": {}, "sub_ss": {}}
    log(f"[{task.name}] float model: {res['float']:.4f} ({time.time() - t0:.0f} s)")
    ft_lr = task.lr * 0.5
    for f in FORMATS:
        res["ptq"][f] = eval_direct(task, base, f)
    for f in FORMATS:
        m = train(task, copy.deepcopy(base), finetune, seed + 7, [f], ft_lr)
        res["sf"][f] = eval_direct(task, m, f)
        log(f"[{task.name}] SF-QAT {f}: {res['sf'][f]:.4f}  (PTQ {res['ptq'][f]:.4f})")
    for fam, fmts in (("int", INT), ("fp", FP)):
        m = train(task, copy.deepcopy(base), finetune, seed + 7, fmts, ft_lr)
        sub = train(task, copy.deepcopy(base), finetune, seed + 7, SUB[fam], ft_lr)
        for f in fmts:
            res["mf"][f], res["mf_ss"][f] = eval_direct(task, m, f), eval_slice_and_scale(task, m, f)
            res["sub"][f], res["sub_ss"][f] = eval_direct(task, sub, f), eval_slice_and_scale(task, sub, f)
            log(f"[{task.name}] MF-QAT {f}: direct {res['mf'][f]:.4f}, anchor+S&S {res['mf_ss'][f]:.4f}; "
                f"MF-sub {res['sub'][f]:.4f} / {res['sub_ss'][f]:.4f}")
    res["seconds"] = time.time() - t0
    return res


# ----------------------------------------------------------------------------- report


def table(task, res) -> str:
    sign = 1 if task.higher_is_better else -1
    lines = [f"### {task.name}: {task.metric} (float model: {res['float']:.4f})", "",
             "| format | PTQ (4) | SF-QAT | MF-QAT | MF - SF (1) | MF anchor+S&S | S&S - direct (3) | "
             "MF-sub | sub - SF (2) |", "|---|---|---|---|---|---|---|---|---|"]
    for f in FORMATS:
        seen = f in SUB[family(f)]
        lines.append(
            f"| {f} | {res['ptq'][f]:.3f} | {res['sf'][f]:.3f} | {res['mf'][f]:.3f} | "
            f"{sign * (res['mf'][f] - res['sf'][f]):+.3f} | {res['mf_ss'][f]:.3f} | "
            f"{sign * (res['mf_ss'][f] - res['mf'][f]):+.3f} | {res['sub'][f]:.3f}{'' if seen else ' (unseen)'} | "
            f"{sign * (res['sub'][f] - res['sf'][f]):+.3f} |")
    lines.append("")
    lines.append("Differences are signed so that positive = better than the comparison.")
    return "\n".join(lines)


def plot(tasks, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.2))
    for ax, task in zip(axes if len(tasks) > 1 else [axes], tasks):
        r = results[task.name]
        xs = range(len(FORMATS))
        for key, label, style in (("ptq", "PTQ", "x:"), ("sf", "SF-QAT", "o-"), ("mf", "MF-QAT direct", "s-"),
                                  ("mf_ss", "MF-QAT anchor + S&S", "^--"), ("sub", "MF-QAT-sub", "d-.")):
            ax.plot(xs, [r[key][f] for f in FORMATS], style, label=label)
        ax.axhline(r["float"], color="gray", lw=0.8, label="float")
        ax.set_xticks(list(xs), [f.replace("mx", "") for f in FORMATS], rotation=30)
        ax.set_title(f"{task.name}: {task.metric}")
        if not task.higher_is_better:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    p.add_argument("--tasks", default="digits,charlm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/reports/slicescale")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)  # 1: the shared 2-core machine oversubscribes with 2
    steps = {"digits": (1500, 400), "charlm": (600, 120)}
    if args.quick:
        steps = {"digits": (30, 10), "charlm": (10, 4)}
    os.makedirs(args.out, exist_ok=True)
    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    log(f"slimops {slimops.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads {torch.get_num_threads()}, backend cpu={slimops.info()['active'].get('cpu')}, seed {args.seed}")
    tasks = [{"digits": Digits, "charlm": CharText}[t](args.seed) for t in args.tasks.split(",")]
    results = {}
    for task in tasks:
        pre, ft = steps[task.name]
        results[task.name] = run_task(task, pre, ft, args.seed, log)
        results[task.name]["steps"] = {"pretrain": pre, "finetune": ft}
    report = "\n\n".join(table(t, results[t.name]) for t in tasks)
    print(report)
    with open(os.path.join(args.out, "experiment.json"), "w") as f:
        json.dump({"results": results, "log": lines, "args": vars(args)}, f, indent=1)
    with open(os.path.join(args.out, "experiment.md"), "w") as f:
        f.write("# MF-QAT / Slice-and-Scale experiment (printed by bench/slicescale/experiment.py)\n\n```\n" +
                "\n".join(lines) + "\n```\n\n" + report + "\n")
    plot(tasks, results, os.path.join(args.out, "experiment.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
