"""The distributed family's benchmark suite: the halo exchange per codec and world size (``slimops bench distributed``).

Runs in the common runner's multi-process mode (:mod:`slimops.benchmarks.runner`):
each world size W is W processes joined by gloo over 127.0.0.1. CPU cases only
so far: the transport's CUDA path (``Comm(wire_device=...)``, ``HaloPlan.to``)
has not run on a GPU, so no CUDA cases are declared yet. The graph is :func:`slimops.data.synthetic_graph`
(a community graph), partitioned once per W (METIS by default, rank 0's partition
broadcast), and each rank holds its nodes' features.

Timed (one call): :func:`slimops.distributed.exchange.aggregate` of the rank's
rows, ``A z`` over the whole graph, through the exchange autograd function of
``--exchange`` (``all``: every halo at once; ``sar``: one peer at a time), mode
``forward`` (one exchange) and ``full`` (forward + backward: the halo rows out,
their gradients back). Providers are the wire codecs, ``none`` (fp32,
uncompressed) first; encode, transfer, decode and the sparse products are all
in the time. World size 1 is the no-communication baseline (``none`` only).

Columns besides the runner's:

* ``time_ms`` / ``median_ms``: per call, the slowest rank's time (max over ranks), min / median over rounds.
* ``bytes_sent``: halo payload bytes every rank together handed to torch.distributed in one call, read
  from :class:`~slimops.distributed.comm.Comm`'s counter (the 16-byte shape headers not counted);
  ``bytes_sent_per_rank`` the same per rank; ``bytes_vs_none`` = none's bytes / this codec's.
* ``work`` / ``gb_s``: the fp32 halo volume of one call (the same for every codec) / time: the effective
  rate, uncompressed bytes delivered per second. ``wire_gb_s``: ``bytes_sent`` / time.
"""

from __future__ import annotations

import torch

from ..benchmarks import harness
from ..benchmarks.runner import Case, Skip, Suite
from .codecs import INT_CODECS
from .partition import PARTITIONERS

CODECS = ("none", "mxfp8", "mxint8", "mxint4", "mxint2", "mxfp4") + INT_CODECS
EXCHANGES = ("all", "sar")
WORLDS = (1, 2, 4)
SIZES = {False: dict(nodes=10000, degree=10, features=128), True: dict(nodes=2000, degree=8, features=32)}


def _send_counts(edge_index: torch.Tensor, part: torch.Tensor, world: int) -> torch.Tensor:
    """(world, world) rows rank s sends rank d in one forward exchange (as in :func:`build_plan`)."""
    src, dst = edge_index
    ps, pd = part[src], part[dst]
    cross = ps != pd
    key = torch.unique(pd[cross] * len(part) + src[cross])  # unique (receiver, source node)
    d, s = key // len(part), part[key % len(part)]
    return torch.bincount(s * world + d, minlength=world * world).view(world, world)


class DistributedSuite(Suite):
    """Halo exchange + aggregation per codec (providers), world size and exchange mode."""

    name = "distributed"
    title = "Halo exchange + aggregation per codec and world size (slowest rank)"
    providers = CODECS
    oracle = None  # codecs are lossy by design: no bit-equality column
    speedups = {"speedup_vs_none": "none"}
    case_columns = ("world", "exchange", "nodes", "features")
    modes = ("forward", "full")
    multiprocess = True
    roofline = False  # wire bytes against a memcpy roofline would say nothing
    run_timeout_s = 900.0  # all the cases of one world size: about a minute on 2 cores by default
    extra_columns = ("bytes_sent", "bytes_sent_per_rank", "bytes_vs_none", "wire_gb_s")
    table_columns = [("time_ms", "ms"), ("median_ms", "median"), ("bytes_sent", "bytes"),
                     ("bytes_vs_none", "x fewer B"), ("gb_s", "eff GB/s"), ("wire_gb_s", "wire GB/s")]

    def __init__(self):
        self._cache: dict = {}  # per rank process: graph, partition, plan, comm per (size, world)

    def add_arguments(self, p):
        g = p.add_argument_group("distributed suite (slimops bench distributed)")
        g.add_argument("--worlds", type=int, nargs="+", help="world sizes, processes per case (default 1 2 4)")
        g.add_argument("--exchange", nargs="+", help=f"exchange modes, from {', '.join(EXCHANGES)} (default: both)")
        g.add_argument("--graph-nodes", type=int, help="nodes of the synthetic graph (default 10000; --quick 2000)")
        g.add_argument("--graph-degree", type=int, help="mean degree of the synthetic graph (default 10; --quick 8)")
        g.add_argument("--graph-features", type=int, help="features per node, the halo row width (default 128; "
                                                          "--quick 32)")
        g.add_argument("--partitioner", help=f"from {', '.join(PARTITIONERS)} (default metis)")
        g.add_argument("--dist-timeout", type=float, help="seconds any collective may wait (default 60)")

    def check_arguments(self, args):
        def bad(msg):
            raise SystemExit(f"slimops: bench distributed: {msg}")

        worlds = getattr(args, "worlds", None)
        if worlds is not None and (not worlds or any(w < 1 or w > 64 for w in worlds)):
            bad(f"--worlds: each world size must be in [1, 64], got {worlds}")
        ex = getattr(args, "exchange", None)
        if ex is not None and set(ex) - set(EXCHANGES):
            bad(f"--exchange: unknown {sorted(set(ex) - set(EXCHANGES))}; expected from {list(EXCHANGES)}")
        for flag in ("graph_nodes", "graph_degree", "graph_features"):
            v = getattr(args, flag, None)
            if v is not None and v < 1:
                bad(f"--{flag.replace('_', '-')}: must be >= 1, got {v}")
        n = getattr(args, "graph_nodes", None)
        if n is not None and n < 32:
            bad(f"--graph-nodes: the synthetic graph needs at least 32 nodes, got {n}")
        part = getattr(args, "partitioner", None)
        if part is not None and part not in PARTITIONERS:
            bad(f"--partitioner: expected one of {list(PARTITIONERS)}, got {part!r}")
        t = getattr(args, "dist_timeout", None)
        if t is not None and not t > 0:
            bad(f"--dist-timeout: must be > 0 seconds, got {t}")
        if n is not None and worlds and n < 4 * max(worlds):
            bad(f"--graph-nodes {n}: too few nodes for world {max(worlds)}")

    def cases(self, args, device):
        if device != "cpu":
            harness.progress(f"distributed: CPU (gloo) cases only so far; none on {device}")
            return []
        quick = bool(getattr(args, "quick", False))
        size = dict(SIZES[quick])
        for k in size:
            v = getattr(args, f"graph_{k}", None)
            size[k] = v if v is not None else size[k]
        self.size = size
        self.partitioner = getattr(args, "partitioner", None) or "metis"
        if getattr(args, "dist_timeout", None):
            self.dist_timeout_s = float(args.dist_timeout)
        out = []
        for w in getattr(args, "worlds", None) or WORLDS:
            for ex in getattr(args, "exchange", None) or EXCHANGES:
                for mode in self.modes:
                    out.append(Case(device, dict(world=w, exchange=ex, nodes=size["nodes"],
                                                 features=size["features"]), mode))
        return out

    # ------------------------------------------------------------------ in each rank

    def _setup(self, case: Case) -> dict:
        """Graph, partition (rank 0's, broadcast), plan and transport of this rank; once per world size."""
        import torch.distributed as dist

        from ..data import synthetic_graph
        from .comm import Comm, verify_plan
        from .partition import build_plan, partition

        rank, world = dist.get_rank(), dist.get_world_size()
        if world != case.world:
            raise RuntimeError(f"case wants world {case.world}, the process group has {world}")
        key = (case.nodes, self.size["degree"], case.features, world, self.partitioner)
        if key not in self._cache:
            g = synthetic_graph(case.nodes, degree=self.size["degree"], features=case.features, seed=0)
            part = partition(g.edge_index, g.num_nodes, world, self.partitioner, seed=0)
            dist.broadcast(part, 0)
            plan = build_plan(g.edge_index, g.num_nodes, part, rank, world)
            comm = Comm(rank, world, self.dist_timeout_s)
            verify_plan(comm, plan.send_counts(), plan.recv_counts())
            counts = _send_counts(g.edge_index, part, world)  # self loops cross no partition
            self._cache = {key: dict(plan=plan, comm=comm, x=g.x[plan.own].contiguous(), counts=counts)}
        return self._cache[key]

    def inputs(self, case):
        s = self._setup(case)
        z = s["x"].clone().requires_grad_(case.mode != "forward")
        return dict(s, z=z)

    def build(self, case, provider, inputs, budget):
        from .exchange import HaloContext, aggregate

        if case.world == 1 and provider != "none":
            raise Skip("world 1: no halo to exchange, the no-communication baseline is 'none'")
        hctx = HaloContext(inputs["plan"], inputs["comm"], provider, case.exchange, seed=0)
        z = inputs["z"]

        def call():
            with inputs["comm"].phase(f"benchmark {provider} {case.exchange}"):
                return aggregate(z, hctx)

        return call, ""

    def work(self, case):
        """fp32 halo bytes of one call, all ranks (twice forward's with the backward)."""
        s = self._setup(case)
        return int(s["counts"].sum()) * case.features * 4 * (1 if case.mode == "forward" else 2)

    def counters(self, inputs):
        return {"bytes_sent": inputs["comm"].bytes["halo"]}

    # ------------------------------------------------------------------ in the parent

    def finish_case(self, case, rows):
        none = next((r["bytes_sent"] for r in rows if r["provider"] == "none" and r["status"] == "ok"), None)
        for r in rows:
            if r["status"] != "ok" or r.get("bytes_sent") is None:
                continue
            if none and r["bytes_sent"]:
                r["bytes_vs_none"] = none / r["bytes_sent"]
            if r["time_ms"] and r["bytes_sent"]:
                r["wire_gb_s"] = r["bytes_sent"] / (r["time_ms"] * 1e-3) / 1e9

    def plot(self, path, rows, meta):
        return harness.plot_bars(path, rows, group_key=lambda r: f"W={r['world']} {r['exchange']}\n{r['mode']}",
                                 series_key="provider", value_key="time_ms", ylabel="ms per call (slowest rank)",
                                 title=self.title)


SUITE = DistributedSuite()
