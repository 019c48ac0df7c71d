"""Distributed full-graph GNN training with compressed halo exchange.

    torchrun --nproc-per-node W -m slimops.distributed.train --dataset cora|citeseer|synthetic --root DIR \\
        --model gcn|sage|gat|gatv2 --codec none|mxfp8|mxint8|mxfp6|mxfp4|mxint4|mxint2|int8|int4|int2|learned \\
        --schedule fixed|exp|linear --mode sar|all --partitioner metis|random|contiguous \\
        --epochs N --seed S --timeout SECONDS --report OUT.json

Without torchrun it runs one process (W = 1, the same code). From Python:
``main(argv)`` in a process that torch.distributed already joined, or
``slimops._ranks.spawn_ranks(run_train, W, (argv,))`` for W local processes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import faulthandler
import json
import os
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .codecs import CODECS
from .comm import Comm, verify_plan
from .exchange import MODES, HaloContext
from .faults import Fault
from .models import ATTENTION, MODELS, DistGNN
from .partition import PARTITIONERS, build_plan, partition
from .schedule import SCHEDULES, codec_at
from .memory import MemoryProbe, SavedTensorBytes, reset_rss_peak, rss_now, rss_peak
from .shards import load_shard, local_rows
from .schedule import __doc__ as SCHEDULE_DOC


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slimops.distributed.train", description=__doc__.split("\n\n")[0],
                                epilog=SCHEDULE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("cora", "citeseer", "synthetic"), default="cora")
    p.add_argument("--root", default=os.environ.get("SLIMOPS_DATA", "data/planetoid"),
                   help="directory of the raw Planetoid files (Cora/raw/ind.cora.x, ...)")
    p.add_argument("--model", choices=MODELS, default="gcn")
    p.add_argument("--codec", choices=CODECS, default="none", help="compression used from the first epoch")
    p.add_argument("--schedule", choices=SCHEDULES, default="fixed")
    p.add_argument("--mode", choices=MODES, default="sar", help="sar: one remote partition at a time; all: at once")
    p.add_argument("--partitioner", choices=PARTITIONERS, default="metis")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0, help="bound on every collective, seconds")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model runs (cuda: GPU LOCAL_RANK modulo the GPUs present)")
    p.add_argument("--dist-backend", choices=("auto", "gloo", "nccl"), default="auto",
                   help="torch.distributed backend; auto: nccl with --device cuda, else gloo. With gloo and a GPU "
                        "model the packed halo bytes are staged through the host")
    p.add_argument("--report", default=None, help="write the run's results as JSON here (rank 0)")
    p.add_argument("--nodes", type=int, default=10000, help="synthetic graph: nodes")
    p.add_argument("--degree", type=int, default=10, help="synthetic graph: mean degree")
    p.add_argument("--features", type=int, default=128, help="synthetic graph: feature width")
    p.add_argument("--classes", type=int, default=8, help="synthetic graph: classes")
    p.add_argument("--noise", type=float, default=3.0, help="synthetic graph: feature noise (std)")
    p.add_argument("--graph-seed", type=int, default=0, help="synthetic graph: its seed (--seed drives the model)")
    p.add_argument("--feature-norm", choices=("none", "row", "standard"), default="none",
                   help="input features as loaded (none), each row scaled to sum 1 (row, PyG's NormalizeFeatures) "
                        "or each column to mean 0 and std 1 over all nodes (standard)")
    p.add_argument("--hidden", type=int, default=None,
                   help="hidden width (per head for gat / gatv2); default 16, 8 for gat / gatv2")
    p.add_argument("--heads", type=int, default=8, help="gat / gatv2: attention heads of the hidden layers")
    p.add_argument("--attn-dropout", type=float, default=0.6, help="gat / gatv2: dropout on the attention coefficients")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--ratio", type=float, default=8.0, help="learned codec: starting compression ratio")
    p.add_argument("--backward-codec", choices=("same", "none"), default="same",
                   help="gradients of the halo travel with the codec in force (same) or as fp32 (none)")
    p.add_argument("--mx-stochastic", action="store_true", help="MX codecs round stochastically")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--keep-graph", action="store_true",
                   help="keep the whole loaded graph in this process for the next run (sweeps); by default each "
                        "rank keeps only its own rows once its plan is built")
    p.add_argument("--max-message-mb", type=float, default=256.0,
                   help="no single point-to-point message larger than this (MiB): a larger halo goes in chunks, "
                        "the same bytes (gloo holds each whole message in memory)")
    p.add_argument("--inject-fault", default=None, metavar="RANK:PHASE[:KIND][@EPOCH]",
                   help="testing: make that rank fail there (PHASE: setup, forward, backward, refetch, report, "
                        "teardown or an epoch number; KIND: raise, exit, stall; see slimops.distributed.faults)")
    # -- large graphs and the learned codec's own settings (issue 19)
    p.add_argument("--shards", default=None, metavar="DIR",
                   help="load only this rank's rows and halo plan from DIR, written once by `slimops partition` "
                        "(the graph, partition and feature options are then the shards'); default: every rank "
                        "loads the whole graph and rank 0 partitions it")
    p.add_argument("--learned-last", choices=("codec", "fp32"), default="codec",
                   help="learned codec: the last layer's halo (the logits) encoded like the others (codec) or sent "
                        "uncompressed (fp32, as SAR's FeatureCompressorDecompressor)")
    p.add_argument("--codec-weight-decay", type=float, default=None,
                   help="weight decay of the learned codecs' parameters (default: --weight-decay; with Adam it "
                        "also shrinks the latent units a schedule has not switched on yet)")
    return p


_GRAPHS: dict = {}  # loaded graphs, by what defines them (several runs in one process load once)


def load_graph(args):
    if args.dataset == "synthetic":
        from ..data.synthetic import synthetic_graph

        key = ("synthetic", args.nodes, args.degree, args.features, args.classes, args.noise, args.graph_seed)
        if key not in _GRAPHS:
            _GRAPHS[key] = synthetic_graph(args.nodes, args.degree, args.features, args.classes, noise=args.noise,
                                           seed=args.graph_seed)
        return _GRAPHS[key]
    from ..data.planetoid import load_planetoid

    key = (args.dataset, os.path.abspath(args.root))
    if key not in _GRAPHS:
        _GRAPHS.clear()
        _GRAPHS[key] = load_planetoid(args.root, args.dataset)
    return _GRAPHS[key]


NORMS = {"gcn": "gcn", "sage": "mean", "gat": "gat", "gatv2": "gat"}  # how each model's plan weighs the edges


def normalize_features(x: torch.Tensor, how: str) -> torch.Tensor:
    """``row``: x / sum_j |x_ij| per row (zero rows stay zero); ``standard``: (x - mean) / std per column."""
    if how == "row":
        return x / x.abs().sum(1, keepdim=True).clamp_min(1e-12)
    if how == "standard":
        return (x - x.mean(0)) / x.std(0).clamp_min(1e-12)
    return x


def setup(args, rank: int, world: int, comm: Comm):
    """Graph, partition (rank 0's, broadcast), checked plan, halo context and model, identical on every rank.

    With ``--shards`` the graph is this rank's :class:`~.shards.Shard` (its rows, and its plan as written)."""
    if args.shards:
        g = load_shard(args.shards, rank, world, NORMS[args.model])
        plan = g.plan
    else:
        g = load_graph(args)
        if args.feature_norm != "none":  # on the whole graph, before it is split: every rank gets the same features
            g = dataclasses.replace(g, x=normalize_features(g.x, args.feature_norm))
        with comm.phase("partition"):
            if rank == 0:  # METIS once; the others receive its answer
                part = partition(g.edge_index, g.num_nodes, world, args.partitioner, args.seed)
            else:
                part = torch.empty(g.num_nodes, dtype=torch.int64)
            if world > 1:
                comm.broadcast_(part, 0)
        plan = build_plan(g.edge_index, g.num_nodes, part, rank, world, NORMS[args.model])
        del part
    verify_plan(comm, plan.send_counts(), plan.recv_counts())
    plan = plan.to(comm.model_device)
    torch.manual_seed(args.seed)  # same initial weights on every rank
    hidden = args.hidden or (8 if args.model in ATTENTION else 16)
    model = DistGNN(args.model, g.x.shape[1], hidden, g.num_classes, args.layers, args.dropout,
                    learned=args.codec == "learned", heads=args.heads, attn_dropout=args.attn_dropout,
                    learned_last=args.learned_last == "codec")
    model.to(comm.model_device)
    torch.manual_seed(args.seed * 7919 + rank + 1)  # dropout differs per rank
    hctx = HaloContext(plan, comm, "none", args.mode, args.backward_codec, args.mx_stochastic, seed=args.seed)
    return g, plan, hctx, model


def optimizer(model: DistGNN, args) -> torch.optim.Optimizer:
    """Adam; the learned codecs' parameters in a group of their own when ``--codec-weight-decay`` is given."""
    if args.codec_weight_decay is None:
        return torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    named = list(model.named_parameters())
    codec = [p for n, p in named if ".codec." in n]
    rest = [p for n, p in named if ".codec." not in n]
    return torch.optim.Adam([{"params": rest}, {"params": codec, "weight_decay": args.codec_weight_decay}],
                            lr=args.lr, weight_decay=args.weight_decay)


def devices(args, rank: int) -> tuple[torch.device, torch.device]:
    """(model device, wire device) of this rank: the CPU twice, or its GPU and the GPU (NCCL) or the CPU (gloo)."""
    if args.device == "cpu":
        return torch.device("cpu"), torch.device("cpu")
    gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    torch.cuda.set_device(gpu)
    return gpu, (gpu if dist.get_backend() == "nccl" else torch.device("cpu"))


def train(args, rank: int, world: int, fault: "Fault | None" = None) -> dict:
    model_device, wire_device = devices(args, rank)
    comm = Comm(rank, world, args.timeout, wire_device, max_message_bytes=max(16, int(args.max_message_mb * 2**20)))
    comm.model_device = model_device
    if fault is not None:
        comm.on_phase = lambda label: fault.hit(rank, label, comm.epoch)
    mem = MemoryProbe()  # the process's floor: the runtime, before any graph is loaded
    g, plan, hctx, model = setup(args, rank, world, comm)
    x, y, masks, n_train = local_rows(g, plan, model_device)
    if not args.keep_graph:  # from here on this rank holds only its rows (and its plan)
        _GRAPHS.clear()
        del g
    persistent = list(model.parameters()) + [t for t in (plan.adj_local, plan.adj_local_t) if t is not None]
    persistent += [t for t in plan.adj_remote + plan.adj_remote_t if t is not None]
    peak_saved = 0
    opt = optimizer(model, args)
    params = [p for p in model.parameters()]
    per_epoch, history = [], []
    best = (-1.0, 0.0, -1)  # val, test, epoch
    mem.setup_done()
    reset_rss_peak()
    rss_start = rss_now()
    if model_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model_device)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        comm.epoch = epoch
        if fault is not None:
            fault.hit(rank, f"epoch {epoch}")
        mem.epoch_start()
        name, ratio = codec_at(args.codec, args.schedule, epoch, args.epochs, args.ratio)
        hctx.set_codec(name, ratio)
        before = comm.bytes["halo"]
        model.train()
        opt.zero_grad(set_to_none=False)
        with comm.phase(f"epoch {epoch}", kind="halo"):
            with SavedTensorBytes(persistent) as saved:
                out = model(x, hctx)
            peak_saved = max(peak_saved, saved.total)
            loss = F.cross_entropy(out[masks[0]], y[masks[0]], reduction="sum") / n_train
            loss.backward()
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            with comm.phase("gradient all-reduce"):
                comm.all_reduce_(flat)
        i = 0
        for p in params:
            p.grad.copy_(flat[i:i + p.numel()].view_as(p))
            i += p.numel()
        opt.step()
        per_epoch.append(comm.bytes["halo"] - before)
        model.eval()
        with comm.phase(f"epoch {epoch} evaluation", kind="eval"), torch.no_grad():
            pred = model(x, hctx).argmax(1)
        stats = torch.tensor([loss.item()] + [float(((pred == y) & m).sum()) for m in masks] +
                             [float(m.sum()) for m in masks], dtype=torch.float64)
        with comm.phase(f"epoch {epoch} metrics all-reduce"):
            comm.all_reduce_(stats, count=False)
        loss_all = float(stats[0])
        acc = [float(stats[1 + j] / max(stats[4 + j], 1)) for j in range(3)]
        if acc[1] > best[0]:
            best = (acc[1], acc[2], epoch)
        with comm.phase(f"epoch {epoch} metrics all-reduce"):
            epoch_bytes = comm.all_reduce_(torch.tensor([per_epoch[-1]], dtype=torch.int64), count=False)
        history.append({"epoch": epoch, "loss": loss_all, "train_acc": acc[0], "val_acc": acc[1], "test_acc": acc[2],
                        "codec": hctx.describe(), "bytes": int(epoch_bytes)})
        if rank == 0 and not args.quiet:
            print(f"epoch {epoch:4d}  loss {loss_all:.4f}  train {acc[0]:.3f}  val {acc[1]:.3f}  test {acc[2]:.3f}"
                  f"  bytes {int(epoch_bytes):>10d}  codec {hctx.describe()}", flush=True)
    elapsed = time.perf_counter() - t0
    comm.epoch = None
    peak_mem = torch.cuda.max_memory_allocated(model_device) if model_device.type == "cuda" else rss_peak()
    with comm.phase("final statistics"):
        per_rank = comm.all_gather(torch.tensor(per_epoch, dtype=torch.int64))  # (W, epochs)
        extra = comm.all_gather(torch.tensor([peak_mem, comm.peak_halo, comm.bytes["allreduce"], comm.bytes["eval"],
                                              comm.bytes["control"], rss_start, peak_saved, comm.largest_message],
                                             dtype=torch.int64))
        nodes = comm.all_gather(torch.tensor([plan.num_local]))[:, 0]
        halo_rows = comm.all_gather(torch.tensor([sum(plan.recv_counts())]))[:, 0]
    total_per_epoch = per_rank.sum(0)
    return {
        "args": vars(args), "world_size": world, "epochs": args.epochs,
        "test_acc": best[1], "val_acc": best[0], "best_epoch": best[2],
        "bytes_sent": int(total_per_epoch.sum()), "bytes_sent_per_epoch": [int(b) for b in total_per_epoch],
        "bytes_sent_per_rank": [int(b) for b in per_rank.sum(1)],
        "bytes_allreduce": int(extra[:, 2].sum()), "bytes_eval": int(extra[:, 3].sum()),
        "bytes_control": int(extra[:, 4].sum()),
        "peak_mem_bytes": [int(b) for b in extra[:, 0]], "peak_mem_kind": ("torch.cuda.max_memory_allocated during training" if model_device.type == "cuda"
                          else "VmHWM during training (CPU RSS)"),
        "rss_train_start_bytes": [int(b) for b in extra[:, 5]],
        "peak_halo_bytes": [int(b) for b in extra[:, 1]],
        "peak_saved_bytes": [int(b) for b in extra[:, 6]],
        "largest_message_bytes": int(extra[:, 7].max()),
        "nodes_per_rank": [int(c) for c in nodes],
        "halo_rows_per_rank": [int(c) for c in halo_rows],
        "train_seconds": elapsed, "history": history,
        **mem.report(comm, elapsed),
    }


def check_args(p: argparse.ArgumentParser, args) -> None:
    """Refuse, before any process group exists, what cannot run here (exit status 2 and one line)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is visible to this process")
    if args.dist_backend == "nccl" and args.device != "cuda":
        p.error("--dist-backend nccl needs --device cuda (NCCL moves GPU tensors only)")
    if args.dist_backend == "nccl" and int(os.environ.get("WORLD_SIZE", "1")) > torch.cuda.device_count():
        p.error(f"--dist-backend nccl needs one GPU per rank: WORLD_SIZE {os.environ.get('WORLD_SIZE')} > "
                f"{torch.cuda.device_count()} GPUs (use --dist-backend gloo to share a GPU)")
    for name in ("epochs", "heads", "layers"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.attn_dropout < 1.0 or not 0.0 <= args.dropout < 1.0:
        p.error(f"--dropout and --attn-dropout must be in [0, 1), got {args.dropout} and {args.attn_dropout}")
    if not args.max_message_mb > 0:
        p.error(f"--max-message-mb must be > 0, got {args.max_message_mb}")
    if args.inject_fault:
        try:
            Fault.parse(args.inject_fault)
        except ValueError as e:
            p.error(str(e))


def _dist_backend(args) -> str:
    if args.dist_backend != "auto":
        return args.dist_backend
    return "nccl" if args.device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) <= torch.cuda.device_count() \
        else "gloo"


def _init_from_env(timeout: float, backend: str = "gloo") -> tuple[int, int]:
    td = datetime.timedelta(seconds=timeout)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group(backend, timeout=td)
    else:  # plain `python -m`: one process, the same code
        fd, path = tempfile.mkstemp(prefix="slimops-dist-")
        os.close(fd)
        os.unlink(path)
        dist.init_process_group(backend, init_method=f"file://{path}", rank=0, world_size=1, timeout=td)
    return dist.get_rank(), dist.get_world_size()


def write_report(path: str, report: dict, fault: "Fault | None" = None, rank: int = 0) -> None:
    """``report`` as JSON at ``path``, atomically: written to a temporary file beside it, then renamed, so a
    run that fails never leaves a partial report (a process killed mid-write leaves only the temporary)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".slimops-report-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if fault is not None:
            fault.hit(rank, "report")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _rank_before_init() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def main(argv=None, fault: "Fault | None" = None) -> dict:
    """Parse ``argv``, join the process group (unless joined), train; rank 0 writes ``--report``."""
    p = parser()
    args = p.parse_args(argv)
    check_args(p, args)
    fault = fault or (Fault.parse(args.inject_fault) if args.inject_fault else None)
    if fault is not None:
        fault.hit(_rank_before_init(), "setup")
    rank, world = _init_from_env(args.timeout, _dist_backend(args))
    report = train(args, rank, world, fault)
    if fault is not None and rank != 0:
        fault.hit(rank, "report")
    if rank == 0 and args.report:
        write_report(args.report, report, fault, rank)
    return report


def run_train(rank: int, world: int, argv: list) -> dict:
    """``main(argv)`` in a rank of :func:`slimops._ranks.spawn_ranks` (the process group is already joined)."""
    return main(argv)


def end_process(code: int):
    """End this process now with ``code``, after flushing its output, without the interpreter's finalisation.

    A finished run must exit 0, and finalisation could abort it: gloo's worker threads release a collective's
    work on their own thread, which drops the Python objects of its tensors and so needs the GIL. When that
    happens while the interpreter finalises, Python ends the thread (``pthread_exit`` from ``take_gil``), whose
    forced unwinding through a C++ ``noexcept`` frame calls ``std::terminate``: "terminate called without an
    active exception", SIGABRT, and torchrun fails the launch (seen in 1 of 6 short 4-rank runs). Nothing is
    left to finalise here: the report is written and closed, the process group ended."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def teardown(timeout: float, fault: "Fault | None" = None) -> None:
    """End the process group on every rank together: a barrier (no rank closes its connections while another
    still waits on a message), then ``destroy_process_group``. A rank that died or stalls makes the barrier fail
    within the timeout."""
    if not dist.is_initialized():
        return
    rank = dist.get_rank()
    if fault is not None:
        fault.hit(rank, "teardown")
    try:
        dist.barrier()
    except Exception as e:  # noqa: BLE001 - gloo raises RuntimeError or DistBackendError
        raise RuntimeError(f"rank {rank}: teardown barrier failed: a peer died, raised or stopped answering "
                           f"(timeout {timeout:g} s): {e}") from e
    dist.destroy_process_group()


def _cli() -> None:
    faulthandler.enable()  # a rank that crashes prints where
    phase = "setup"
    try:
        p = parser()
        args = p.parse_args()
        check_args(p, args)  # usage errors exit 2 before anything starts
        fault = Fault.parse(args.inject_fault) if args.inject_fault else None
        phase = "training"
        main(None, fault)
        phase = "teardown"
        teardown(args.timeout, fault)
    except SystemExit as e:  # argparse: usage errors, --help
        end_process(e.code if isinstance(e.code, int) else 2 if e.code else 0)
    except BaseException as e:  # noqa: BLE001 - end at once, never hang in the process group's teardown
        print(f"slimops.distributed.train: rank {os.environ.get('RANK', '0')} failed in {phase}: "
              f"{type(e).__name__}: {e}", file=sys.stderr, flush=True)
        end_process(1)
    end_process(0)


if __name__ == "__main__":
    _cli()
