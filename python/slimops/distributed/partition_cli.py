"""``slimops partition``: partition a graph once and write one shard per rank (:mod:`.shards`), with the training
CLI's own graph and partition options (:mod:`.train`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from .partition import PARTITIONERS, partition
from .shards import GRAPH_OPTIONS, NORMS, Phases, write_shards
from .train import load_graph, normalize_features, parser

def add_arguments(p: argparse.ArgumentParser) -> None:
    """``slimops partition``'s options: the training CLI's graph and partition options (the same actions, so the
    same names, defaults and help), the world size, the edge weightings and the output folder."""
    for action in parser()._actions:
        if action.dest in GRAPH_OPTIONS:
            p._add_action(action)
    p.add_argument("--world", type=int, required=True, help="ranks the shards are for (one shard per rank)")
    p.add_argument("--norm", nargs="+", default=["gcn"], choices=NORMS, dest="norms",
                   help="edge weightings to write plans for: gcn (GCN), mean (GraphSAGE), gat (GAT)")
    p.add_argument("--out", required=True, help="folder of the shards (created; files in it are replaced)")


def main(args) -> int:
    if args.world < 1:
        print(f"slimops partition: error: --world must be >= 1, got {args.world}", file=sys.stderr)
        return 2
    if args.partitioner not in PARTITIONERS:
        print(f"slimops partition: error: --partitioner must be one of {PARTITIONERS}", file=sys.stderr)
        return 2
    phases = Phases()
    try:
        g = phases.run("load", load_graph, args)
    except (OSError, ValueError) as e:
        print(f"slimops partition: error: {e}", file=sys.stderr)
        return 2
    if args.feature_norm != "none":
        g = dataclasses.replace(g, x=normalize_features(g.x, args.feature_norm))
    part = phases.run("partition", partition, g.edge_index, g.num_nodes, args.world, args.partitioner, args.seed)
    source = {k: getattr(args, k) for k in GRAPH_OPTIONS}
    meta = write_shards(g, part, args.world, args.out, args.norms, {"source": source}, phases)
    cut = int((part[g.edge_index[0]] != part[g.edge_index[1]]).sum())
    print(f"slimops partition: {g.num_nodes} nodes, {meta['num_edges']} edges ({cut} cut) -> {args.world} shards "
          f"in {args.out}; " + ", ".join(f"{k} {v['seconds']:.1f} s / peak {v['rss_peak_bytes'] / 2**30:.2f} GiB"
                                         for k, v in meta["phases"].items()))
    return 0
