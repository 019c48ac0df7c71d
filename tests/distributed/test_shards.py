"""Shards written once (`slimops partition`) train exactly as the whole graph loaded on every rank; plans held once;
the learned codec's own options (logits in fp32, no weight decay on the codec)."""

from __future__ import annotations

import json

import pytest
import torch

from slimops.__main__ import main as slimops_main
from slimops._ranks import RankError, spawn_ranks
from slimops.distributed.train import run_train

from .test_cli import SMALL

GRAPH = SMALL + ["--seed", "2", "--epochs", "3", "--quiet", "--heads", "2"]


def _partition(out, world, partitioner, norms=("gcn", "gat")):
    argv = ["partition", *SMALL[:SMALL.index("--hidden")], "--partitioner", partitioner, "--seed", "2",
            "--world", str(world), "--norm", *norms, "--out", str(out)]
    assert slimops_main(argv) == 0


@pytest.mark.parametrize("model,mode,partitioner", [("gcn", "sar", "metis"), ("gat", "all", "random")])
def test_shards_train_exactly_as_the_whole_graph(tmp_path, model, mode, partitioner):
    _partition(tmp_path, 2, partitioner)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["world"] == 2 and sum(meta["nodes_per_rank"]) == meta["num_nodes"] == 200
    assert {"load", "partition", "rows", "plans_gcn", "plans_gat"} <= set(meta["phases"])
    args = GRAPH + ["--model", model, "--mode", mode, "--partitioner", partitioner, "--codec", "mxint4"]
    whole = spawn_ranks(run_train, 2, (args,), timeout_s=30, run_timeout_s=120)[0]
    shard = spawn_ranks(run_train, 2, (args + ["--shards", str(tmp_path)],), timeout_s=30, run_timeout_s=120)[0]
    assert shard["history"] == whole["history"]  # loss, accuracies and bytes of every epoch, exactly
    for key in ("bytes_sent_per_rank", "nodes_per_rank", "halo_rows_per_rank", "test_acc"):
        assert shard[key] == whole[key], key
    assert all(f <= p for f, p in zip(shard["rss_floor_bytes"], shard["rss_setup_peak_bytes"]))
    assert len(shard["epoch_seconds"]) == 3


def test_a_plan_is_held_once(tmp_path):
    """The loaded CSR blocks are built on the loaded tensors (no copy); GAT plans keep no transposes, and
    attention's blocks are the plan's own int32 indices."""
    from slimops.distributed.attention import attention_blocks
    from slimops.distributed.shards import _csr, load_shard

    _partition(tmp_path, 2, "random")
    parts = torch.load(tmp_path / "rank0.gcn.pt", weights_only=True)["adj_local"]
    csr = _csr(parts)
    assert csr.col_indices().data_ptr() == parts[1].data_ptr() and csr.values().data_ptr() == parts[2].data_ptr()
    assert csr.crow_indices().data_ptr() == parts[0].data_ptr()
    gat = load_shard(str(tmp_path), 0, 2, "gat").plan
    assert gat.adj_local_t is None and all(t is None for t in gat.adj_remote_t)
    blocks, _ = attention_blocks(gat)
    assert blocks[0][1].data_ptr() == gat.adj_local.col_indices().data_ptr()
    assert blocks[1][0].data_ptr() == gat.adj_remote[1].crow_indices().data_ptr()


def test_shards_that_do_not_fit_the_launch_are_refused(tmp_path):
    _partition(tmp_path, 2, "random", norms=("gcn",))
    with pytest.raises(RankError, match="written for 2 ranks, this launch has 1"):
        spawn_ranks(run_train, 1, (GRAPH + ["--shards", str(tmp_path)],), run_timeout_s=60)
    with pytest.raises(RankError, match="this model needs 'gat'"):
        spawn_ranks(run_train, 2, (GRAPH + ["--model", "gat", "--shards", str(tmp_path)],), timeout_s=20,
                    run_timeout_s=60)
    with pytest.raises(RankError, match="no readable meta.json"):
        spawn_ranks(run_train, 1, (GRAPH + ["--shards", str(tmp_path / "nowhere")],), run_timeout_s=60)


def test_learned_codec_with_fp32_logits_sends_what_the_plan_says():
    """--learned-last fp32: layer 1's halo is the ceil(8 / 4) = 2-unit code, layer 2's the 4 logits uncompressed,
    forward and backward, every epoch; --codec-weight-decay 0 leaves the latent units not yet in use untouched."""
    from slimops.data import synthetic_graph
    from slimops.distributed.partition import build_plan, partition

    args = GRAPH + ["--codec", "learned", "--ratio", "4", "--learned-last", "fp32", "--codec-weight-decay", "0",
                    "--mode", "all", "--partitioner", "metis"]
    r = spawn_ranks(run_train, 2, (args,), timeout_s=30, run_timeout_s=120)[0]
    g = synthetic_graph(200, 6, 12, 4, seed=0)
    part = partition(g.edge_index, g.num_nodes, 2, "metis", 2)
    rows = sum(len(build_plan(g.edge_index, g.num_nodes, part, rank, 2).send_idx[1 - rank]) for rank in (0, 1))
    assert r["bytes_sent_per_epoch"] == [2 * rows * (2 + 4) * 4] * 3  # (code + logits) fp32, forward + backward


def test_codec_weight_decay_keeps_unused_latent_units():
    """Adam with weight decay moves an encoder row that gets no gradient; with --codec-weight-decay 0 it stays."""
    from slimops.distributed.models import DistGNN
    from slimops.distributed.train import optimizer, parser

    for wd, moved in (("0.0005", True), ("0", False)):
        torch.manual_seed(0)
        model = DistGNN("gcn", 6, 8, 3, learned=True)
        opt = optimizer(model, parser().parse_args(["--codec-weight-decay", wd]))
        enc = model.convs[0].codec.enc_weight
        before = enc.detach().clone()
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        enc.grad[:2] = 1.0  # only the first two latent units in use
        opt.step()
        assert not torch.equal(enc[:2], before[:2])
        assert (not torch.equal(enc[2:], before[2:])) == moved
