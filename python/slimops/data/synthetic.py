"""A synthetic node-classification graph with community structure (a stochastic block model).

Nodes fall into ``classes`` communities; each node draws ``degree`` / 2 edges,
a fraction ``p_in`` of them inside its community, the rest anywhere. Features
are a noisy class centroid, so a GNN that aggregates neighbours beats an MLP.
Deterministic for a seed; splits: 20 train nodes per class, 500 val, 1000 test
(fewer on small graphs).
"""

from __future__ import annotations

import torch

from .planetoid import Graph


def synthetic_graph(nodes: int = 10000, degree: int = 10, features: int = 128, classes: int = 8,
                    p_in: float = 0.8, noise: float = 3.0, seed: int = 0) -> Graph:
    if nodes < classes * 4:
        raise ValueError(f"nodes must be at least 4 * classes = {classes * 4}, got {nodes}")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (nodes,), generator=g)
    centroids = torch.randn(classes, features, generator=g)
    x = centroids[y] + noise * torch.randn(nodes, features, generator=g)
    m = max(1, degree // 2) * nodes
    src = torch.randint(0, nodes, (m,), generator=g)
    inside = torch.rand(m, generator=g) < p_in
    order = torch.argsort(y, stable=True)  # nodes sorted by class, to draw a same-class partner
    counts = torch.bincount(y, minlength=classes)
    starts = torch.cumsum(counts, 0) - counts
    c = y[src]
    pick = starts[c] + (torch.rand(m, generator=g) * counts[c]).long().clamp_max(counts[c] - 1)
    dst = torch.where(inside, order[pick], torch.randint(0, nodes, (m,), generator=g))
    ei = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    ei = ei[:, ei[0] != ei[1]]
    key = torch.unique(ei[0] * nodes + ei[1])
    edge_index = torch.stack([key // nodes, key % nodes])
    perm = torch.randperm(nodes, generator=g)
    train = torch.zeros(nodes, dtype=torch.bool)
    for k in range(classes):
        train[perm[y[perm] == k][:20]] = True
    rest = perm[~train[perm]]
    nval = min(500, len(rest) // 3)
    ntest = min(1000, len(rest) - nval)
    val = torch.zeros(nodes, dtype=torch.bool)
    val[rest[:nval]] = True
    test = torch.zeros(nodes, dtype=torch.bool)
    test[rest[nval:nval + ntest]] = True
    return Graph(x, y, edge_index, train, val, test, "synthetic")
