"""Accuracy of FusedGATv2Conv next to PyG's GATv2Conv, trained the same way, several seeds.

1. A 2-layer GATv2 on Cora and CiteSeer: exactly train_cora.py's GAT set-up with the layer swapped (8 heads x 8
   hidden, ELU, 1 output head, dropout 0.6 on inputs and attention, Adam lr 0.005, weight decay 5e-4,
   row-normalised features, 200 epochs; test accuracy at the epoch of best validation accuracy).
2. The edge-feature path on a synthetic graph whose labels depend on the edge attributes: every node has a
   random label y and a random colour c; its features are a noisy one-hot of c; of its 8 in-edges, 2 come
   from nodes whose colour is its label ("trusted" edges) and 6 from random nodes; each edge carries 4
   attributes, a noisy one-hot of trusted / random. Only attention that reads the edge attributes can find
   the trusted neighbours. Model: GATv2(16 -> 4 x 16, edge_dim=4), ELU, GATv2(64 -> classes, edge_dim=4,
   residual), attention dropout 0.2, Adam lr 0.01, 200 epochs, 60/20/20 split. A control trains PyG's
   layer without the edge attributes.

    nice -n 19 python bench/gat/train_gatv2.py --root ../shared/data/planetoid --seeds 5 --out bench/reports/gatv2-cpu-2core
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import slimops
from slimops.data import load_planetoid
from slimops.nn import FusedGATv2Conv
from train_cora import run as run_planetoid  # the GAT report's training, layer swapped


def edge_task(nodes=3000, classes=5, features=16, trusted=2, noisy=6, edge_dim=4, noise=0.6, seed=0):
    """(x, y, edge_index, edge_attr, train, val, test): labels recoverable only through the edge attributes."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (nodes,), generator=g)
    colour = torch.randint(0, classes, (nodes,), generator=g)
    x = torch.randn(nodes, features, generator=g)
    x[:, :classes] += 2.0 * F.one_hot(colour, classes)
    order = torch.argsort(colour, stable=True)  # nodes by colour, to draw a source of a given colour
    counts = torch.bincount(colour, minlength=classes)
    starts = torch.cumsum(counts, 0) - counts
    dst_t = torch.arange(nodes).repeat_interleave(trusted)
    pick = starts[y[dst_t]] + (torch.rand(dst_t.numel(), generator=g) * counts[y[dst_t]]).long()
    src_t = order[pick.clamp_max(nodes - 1)]
    dst_r = torch.arange(nodes).repeat_interleave(noisy)
    src_r = torch.randint(0, nodes, (dst_r.numel(),), generator=g)
    kind = torch.cat([torch.zeros(dst_t.numel(), dtype=torch.long), torch.ones(dst_r.numel(), dtype=torch.long)])
    ei = torch.stack([torch.cat([src_t, src_r]), torch.cat([dst_t, dst_r])])
    attr = F.one_hot(kind, edge_dim).float() + noise * torch.randn(kind.numel(), edge_dim, generator=g)
    perm = torch.randperm(ei.shape[1], generator=g)
    split = torch.randperm(nodes, generator=g)
    masks = [torch.zeros(nodes, dtype=torch.bool) for _ in range(3)]
    for m, part in zip(masks, (split[:int(0.6 * nodes)], split[int(0.6 * nodes):int(0.8 * nodes)],
                               split[int(0.8 * nodes):])):
        m[part] = True
    return x, y, ei[:, perm], attr[perm], *masks


class EdgeGATv2(torch.nn.Module):
    def __init__(self, conv, in_ch, classes, edge_dim, heads=4, hidden=16, dropout=0.2):
        super().__init__()
        self.conv1 = conv(in_ch, hidden, heads=heads, dropout=dropout, edge_dim=edge_dim)
        self.conv2 = conv(hidden * heads, classes, heads=1, concat=False, dropout=dropout, edge_dim=edge_dim,
                          residual=True)

    def forward(self, x, edge_index, edge_attr):
        return self.conv2(F.elu(self.conv1(x, edge_index, edge_attr)), edge_index, edge_attr)


def run_edge_task(conv, data, seed, epochs, use_attr=True):
    x, y, ei, attr, train, val, test = data
    torch.manual_seed(seed)
    model = EdgeGATv2(conv, x.shape[1], int(y.max()) + 1, attr.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    ea = attr if use_attr else None
    best_val, test_at_best = -1.0, 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, ei, ea)[train], y[train]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, ei, ea).argmax(1)
        v, t = ((pred[m] == y[m]).float().mean().item() for m in (val, test))
        if v > best_val:
            best_val, test_at_best = v, t
    return {"seed": seed, "best_val": best_val, "test_at_best_val": test_at_best, "seconds": time.perf_counter() - t0}


def summary(results: dict) -> dict:
    out = {}
    for name, rs in results.items():
        accs = [r["test_at_best_val"] for r in rs]
        out[name] = dict(mean=statistics.mean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                         min=min(accs), max=max(accs), seconds=statistics.mean(r["seconds"] for r in rs), n=len(accs))
    return out


def write_report(out: str) -> str:
    """accuracy.md from every accuracy_<task>.json under ``out`` (the tasks may run as separate processes)."""
    lines = ["| task | model | test acc at best val (mean ± std) | min | max | runs | s / run |",
             "|---|---|---|---|---|---|---|"]
    metas = []
    for name in sorted(os.listdir(out)):
        if not (name.startswith("accuracy_") and name.endswith(".json")):
            continue
        with open(os.path.join(out, name)) as f:
            rep = json.load(f)
        metas.append(rep["meta"])
        for task, s in rep["summary"].items():
            for model, v in s.items():
                lines.append(f"| {task} | {model} | {100 * v['mean']:.2f} ± {100 * v['std']:.2f} % | "
                             f"{100 * v['min']:.1f} | {100 * v['max']:.1f} | {v['n']} | {v['seconds']:.1f} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "accuracy.md"), "w") as f:
        f.write("\n".join(str(m) for m in metas) + "\n\n" + text)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="/work/shared/data/planetoid")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--datasets", default="cora,citeseer,edge-task")
    ap.add_argument("--out", default="bench/reports/gatv2-cpu-2core")
    ap.add_argument("--report-only", action="store_true", help="only rewrite accuracy.md from the JSON files")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.report_only:
        print(write_report(args.out))
        return
    from torch_geometric.nn import GATv2Conv

    meta = dict(device=f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
                torch=torch.__version__, slimops=slimops.__version__, backend=slimops.current_backend(),
                seeds=args.seeds, epochs=args.epochs, time=time.strftime("%Y-%m-%d %H:%M:%S"))
    for task in args.datasets.split(","):
        if task == "edge-task":
            data = edge_task()
            providers = {"slimops FusedGATv2Conv": lambda s: run_edge_task(FusedGATv2Conv, data, s, args.epochs),
                         "PyG GATv2Conv": lambda s: run_edge_task(GATv2Conv, data, s, args.epochs),
                         "PyG GATv2Conv without edge_attr (control)":
                             lambda s: run_edge_task(GATv2Conv, data, s, args.epochs, use_attr=False)}
        else:
            data = load_planetoid(args.root, task, normalize_features=False)  # run() normalises
            providers = {"slimops FusedGATv2Conv": lambda s: run_planetoid(FusedGATv2Conv, data, s, args.epochs),
                         "PyG GATv2Conv": lambda s: run_planetoid(GATv2Conv, data, s, args.epochs)}
        results = {}
        for seed in range(args.seeds):
            for name, fn in providers.items():  # interleaved
                r = fn(seed)
                results.setdefault(name, []).append(r)
                print(f"{task:10s} {name:42s} seed {seed}: test {r['test_at_best_val']:.4f} "
                      f"(val {r['best_val']:.4f}) {r['seconds']:.1f}s", flush=True)
                with open(os.path.join(args.out, f"accuracy_{task}.json"), "w") as f:  # after every run
                    json.dump({"meta": meta, "summary": {task: summary(results)}, "runs": {task: results}}, f,
                              indent=1)
    print(write_report(args.out))


if __name__ == "__main__":
    main()
