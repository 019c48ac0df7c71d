"""One shard per rank, written once: the rank's rows and its halo plan, so that no rank loads the whole graph.

As DistDGL's ``partition_graph`` writes a partition per machine, ``slimops partition`` loads the graph once,
partitions it (METIS, random or contiguous), builds every rank's :class:`~.partition.HaloPlan` one after
another and writes under ``--out DIR``:

* ``meta.json``: the graph (nodes, edges, features, classes, training nodes), the partition (method, seed,
  world size), the edge weightings written, and what writing cost: seconds and peak resident memory of each
  phase (load, partition, plans).
* ``rank{r}.rows.pt``: the rank's global node ids, features, labels and split masks.
* ``rank{r}.{norm}.pt``: the rank's plan for that edge weighting (``gcn`` for GCN, ``mean`` for GraphSAGE,
  ``gat`` for GAT): send and receive lists and its CSR blocks as (row pointers, columns, values).

``python -m slimops.distributed.train --shards DIR`` (under torchrun) then loads ``rank{r}.*`` only. The
CSR tensors are built on the loaded components (no copy), so each rank holds its plan once.

    slimops partition --dataset synthetic --nodes 2000000 --degree 16 --features 128 --world 4 \\
        --partitioner metis --norm gcn gat --out shards/
    torchrun --nproc-per-node 4 -m slimops.distributed.train --shards shards/ --model gcn --epochs 3
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings

import torch

from .memory import reset_rss_peak, rss_now, rss_peak
from .partition import HaloPlan, build_plan, edge_weights

FORMAT = "slimops-shards/1"
NORMS = ("gcn", "mean", "gat")
GRAPH_OPTIONS = ("dataset", "root", "nodes", "degree", "features", "classes", "noise", "graph_seed", "feature_norm",
                 "partitioner", "seed")  # the training CLI's own options, shared (see add_arguments)


@dataclasses.dataclass
class Shard:
    """One rank's rows (features, labels, masks) and its plan; ``n_train`` counts training nodes of the whole
    graph (the loss is their mean)."""

    x: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    plan: HaloPlan
    num_classes: int
    n_train: int


def local_rows(g, plan: HaloPlan, device) -> tuple:
    """``(x, y, [train, val, test masks], n_train)`` of this rank's nodes, from a whole graph or a :class:`Shard`."""
    if isinstance(g, Shard):
        rows = (g.x, g.y, g.train_mask, g.val_mask, g.test_mask)
        n_train = g.n_train
    else:
        own = plan.own
        rows = tuple(t[own] for t in (g.x, g.y, g.train_mask, g.val_mask, g.test_mask))
        n_train = int(g.train_mask.sum())
    x, y, *masks = (t.to(device) for t in rows)
    return x, y, masks, n_train


# ----------------------------------------------------------------------------- files


def _csr_parts(t):
    return None if t is None else (t.crow_indices(), t.col_indices(), t.values(), list(t.shape))


def _csr(parts):
    if parts is None:
        return None
    crow, col, val, shape = parts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, val, tuple(shape))  # on the loaded tensors, not a copy


def plan_state(plan: HaloPlan) -> dict:
    """What :func:`plan_from_state` needs, tensors and plain values only (``torch.load(weights_only=True)``)."""
    return {"rank": plan.rank, "world": plan.world, "norm": plan.norm, "own": plan.own, "send_idx": plan.send_idx,
            "recv_ids": plan.recv_ids, "adj_local": _csr_parts(plan.adj_local),
            "adj_local_t": _csr_parts(plan.adj_local_t), "adj_remote": [_csr_parts(t) for t in plan.adj_remote],
            "adj_remote_t": [_csr_parts(t) for t in plan.adj_remote_t]}


def plan_from_state(s: dict) -> HaloPlan:
    return HaloPlan(s["rank"], s["world"], s["own"], s["send_idx"], s["recv_ids"], _csr(s["adj_local"]),
                    _csr(s["adj_local_t"]), [_csr(p) for p in s["adj_remote"]], [_csr(p) for p in s["adj_remote_t"]],
                    s["norm"])


def read_meta(path: str) -> dict:
    f = os.path.join(path, "meta.json")
    try:
        with open(f) as fh:
            meta = json.load(fh)
    except (OSError, ValueError) as e:
        raise ValueError(f"--shards {path}: no readable meta.json ({e}); write the shards with `slimops partition`") \
            from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"--shards {path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_shard(path: str, rank: int, world: int, norm: str) -> Shard:
    """This rank's :class:`Shard` under ``path``, for a launch of ``world`` ranks and edge weighting ``norm``."""
    meta = read_meta(path)
    if meta["world"] != world:
        raise ValueError(f"--shards {path}: written for {meta['world']} ranks, this launch has {world}")
    if norm not in meta["norms"]:
        raise ValueError(f"--shards {path}: has plans for {meta['norms']}, this model needs {norm!r} "
                         f"(slimops partition --norm {norm})")
    rows = torch.load(os.path.join(path, f"rank{rank}.rows.pt"), weights_only=True)
    plan = plan_from_state(torch.load(os.path.join(path, f"rank{rank}.{norm}.pt"), weights_only=True))
    if plan.rank != rank or plan.world != world or not torch.equal(plan.own, rows["own"]):
        raise ValueError(f"--shards {path}: rank{rank}.{norm}.pt does not belong with rank{rank}.rows.pt")
    return Shard(rows["x"], rows["y"], rows["train_mask"], rows["val_mask"], rows["test_mask"], plan,
                 meta["num_classes"], meta["n_train"])


def _atomic_save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Phases:
    """Seconds and peak resident memory (VmHWM, reset per phase where the kernel allows) of each phase."""

    def __init__(self):
        self.out = {}

    def run(self, name: str, fn, *a, **kw):
        reset_rss_peak()
        before, t = rss_now(), time.perf_counter()
        result = fn(*a, **kw)
        self.out[name] = {"seconds": round(time.perf_counter() - t, 3), "rss_before_bytes": before,
                          "rss_peak_bytes": rss_peak()}
        return result


def write_shards(g, part: torch.Tensor, world: int, out: str, norms=("gcn",), meta: dict | None = None,
                 phases: "Phases | None" = None) -> dict:
    """Write ``g`` split by ``part`` (owner rank per node) as ``world`` shards under ``out``; returns the meta."""
    bad = [n for n in norms if n not in NORMS]
    if bad:
        raise ValueError(f"norms must be from {NORMS}, got {bad}")
    os.makedirs(out, exist_ok=True)
    phases = phases or Phases()

    def rows():
        for r in range(world):
            own = torch.nonzero(part == r).flatten()
            _atomic_save({"own": own, "x": g.x[own].contiguous(), "y": g.y[own], "train_mask": g.train_mask[own],
                          "val_mask": g.val_mask[own], "test_mask": g.test_mask[own]},
                         os.path.join(out, f"rank{r}.rows.pt"))

    def plans(norm):
        weighted = edge_weights(g.edge_index, g.num_nodes, norm)
        for r in range(world):
            plan = build_plan(g.edge_index, g.num_nodes, part, r, world, norm, weighted=weighted)
            _atomic_save(plan_state(plan), os.path.join(out, f"rank{r}.{norm}.pt"))

    phases.run("rows", rows)
    for norm in norms:
        phases.run(f"plans_{norm}", plans, norm)
    meta = dict(meta or {}, format=FORMAT, world=world, norms=list(norms), num_nodes=g.num_nodes,
                num_edges=int(g.edge_index.shape[1]), num_features=int(g.x.shape[1]), num_classes=g.num_classes,
                n_train=int(g.train_mask.sum()), nodes_per_rank=torch.bincount(part, minlength=world).tolist(),
                phases=phases.out)
    with open(os.path.join(out, "meta.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(os.path.join(out, "meta.json.tmp"), os.path.join(out, "meta.json"))  # last: a complete set
    return meta
