"""2-layer GAT on Cora (Velickovic et al.'s setup, as PyG's examples/gat.py): FusedGATConv vs PyG GATConv.

8 heads x 8 hidden, ELU, 1 output head, dropout 0.6 on inputs and attention, Adam lr 0.005,
weight decay 5e-4, row-normalised features, 200 epochs; the test accuracy at the epoch of best
validation accuracy, over several seeds. Offline: the Planetoid raw files from --root.

    python bench/gat/train_cora.py --root ../shared/data/planetoid --seeds 5 --out bench/reports/gat-cora
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
from slimops.nn import FusedGATConv


class GAT(torch.nn.Module):
    def __init__(self, conv, in_ch, hidden, classes, heads=8, dropout=0.6):
        super().__init__()
        self.dropout = dropout
        self.conv1 = conv(in_ch, hidden, heads=heads, dropout=dropout)
        self.conv2 = conv(hidden * heads, classes, heads=1, concat=False, dropout=dropout)

    def forward(self, x, edge_index):
        x = F.dropout(x, self.dropout, self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


def run(conv, data, seed, epochs):
    torch.manual_seed(seed)
    model = GAT(conv, data.x.shape[1], 8, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    x = data.x / data.x.sum(1, keepdim=True).clamp_min(1)
    best_val, test_at_best = -1.0, 0.0
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, data.edge_index).argmax(1)
        val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
        test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
        if val > best_val:
            best_val, test_at_best = val, test
    return {"seed": seed, "best_val": best_val, "test_at_best_val": test_at_best, "final_test": test,
            "seconds": time.perf_counter() - t0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/work/shared/data/planetoid")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--out", default="bench/reports/gat-cora")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--providers", default="slimops,pyg", help="slimops and/or pyg")
    args = ap.parse_args()
    data = load_planetoid(args.root, "cora", normalize_features=False)  # normalised below, as before
    wanted = args.providers.split(",")
    providers = {"slimops FusedGATConv": FusedGATConv} if "slimops" in wanted else {}
    try:
        from torch_geometric.nn import GATConv

        if "pyg" in wanted:
            providers["PyG GATConv"] = GATConv
    except ImportError:
        print("PyG not installed: FusedGATConv only")
    results = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, conv in providers.items():  # interleaved
            r = run(conv, data, seed, args.epochs)
            results.setdefault(name, []).append(r)
            print(f"{name:22s} seed {seed}: test {r['test_at_best_val']:.4f} (val {r['best_val']:.4f}) "
                  f"{r['seconds']:.1f}s", flush=True)
    os.makedirs(args.out, exist_ok=True)
    if len(next(iter(results.values()))) < 2:
        return
    lines = [f"# 2-layer GAT on Cora, {args.seeds} seeds x {args.epochs} epochs",
             f"device: CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads); "
             f"torch {torch.__version__}; slimops {slimops.__version__}; backend {slimops.current_backend()}", "",
             "| model | test acc at best val (mean ± std) | min | max | s / run |", "|---|---|---|---|---|"]
    for name, rs in results.items():
        accs = [r["test_at_best_val"] for r in rs]
        lines.append(f"| {name} | {100 * statistics.mean(accs):.2f} ± {100 * statistics.stdev(accs):.2f} % | "
                     f"{100 * min(accs):.1f} | {100 * max(accs):.1f} | "
                     f"{statistics.mean(r['seconds'] for r in rs):.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "runs.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
