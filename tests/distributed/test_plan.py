"""Partitions, halo plans and schedules on one process (no communication)."""

from __future__ import annotations

import pytest
import torch

from slimops.distributed.partition import build_plan, edge_weights, partition
from slimops.distributed.schedule import codec_at, ladder, ratio_at

from .helpers import dense_adj, small_graph


@pytest.mark.parametrize("method", ["metis", "random", "contiguous"])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_partition_covers_every_node(method, world):
    g = small_graph()
    part = partition(g.edge_index, g.num_nodes, world, method, seed=1)
    assert part.shape == (g.num_nodes,) and part.min() >= 0 and part.max() < world
    counts = torch.bincount(part, minlength=world)
    assert (counts > 0).all()
    if method != "metis":
        assert counts.max() - counts.min() <= 1


def test_metis_cuts_fewer_edges_than_random():
    g = small_graph(400)
    cut = {}
    for m in ("metis", "random"):
        part = partition(g.edge_index, g.num_nodes, 4, m, seed=0)
        cut[m] = int((part[g.edge_index[0]] != part[g.edge_index[1]]).sum())
    assert cut["metis"] < cut["random"]


@pytest.mark.parametrize("norm", ["gcn", "mean"])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_plans_are_consistent_and_reassemble_the_adjacency(norm, world):
    g = small_graph()
    n = g.num_nodes
    part = partition(g.edge_index, n, world, "random", seed=3)
    plans = [build_plan(g.edge_index, n, part, r, world, norm) for r in range(world)]
    dense = dense_adj(g.edge_index, n, norm)
    z = torch.randn(n, 5)
    for r, pl in enumerate(plans):
        for p in pl.peers():
            # what r receives from p is exactly what p sends to r, in the same order
            assert torch.equal(pl.recv_ids[p], plans[p].own[plans[p].send_idx[r]])
        out = pl.adj_local @ z[pl.own]
        for p in pl.peers():
            out = out + pl.adj_remote[p] @ z[pl.recv_ids[p]]
            assert torch.allclose(pl.adj_remote_t[p].to_dense(), pl.adj_remote[p].to_dense().t())
        torch.testing.assert_close(out, dense[pl.own] @ z, rtol=1e-5, atol=1e-6)


def test_edge_weights_gcn_rows():
    g = small_graph()
    (src, dst), w = edge_weights(g.edge_index, g.num_nodes, "gcn")
    assert len(w) == g.edge_index.shape[1] + g.num_nodes


def test_build_plan_bad_input():
    g = small_graph()
    part = partition(g.edge_index, g.num_nodes, 2, "contiguous")
    with pytest.raises(ValueError, match="do not match the partition"):
        build_plan(g.edge_index, g.num_nodes, part, 0, 1)
    with pytest.raises(ValueError, match="part must have shape"):
        build_plan(g.edge_index, g.num_nodes, part[:-1], 0, 2)
    with pytest.raises(ValueError, match="partitioner must be one of"):
        partition(g.edge_index, g.num_nodes, 2, "spectral")


def test_schedules_and_ladders():
    assert ladder("mxint2") == ("mxint2", "mxint4", "mxint8", "none")
    assert ladder("mxfp6") == ("mxfp6", "mxfp8", "none")
    assert ladder("int4") == ("int4", "int8", "none")
    T = 100
    for sched in ("exp", "linear"):
        seq = [codec_at("int2", sched, t, T)[0] for t in range(T)]
        assert seq[0] == "int2" and seq[-1] == "none"
        order = ["int2", "int4", "int8", "none"]
        assert all(order.index(a) <= order.index(b) for a, b in zip(seq, seq[1:]))  # only ever less compression
        assert abs(ratio_at(sched, 16, T - 1, T) - 1) < 1e-12 and ratio_at(sched, 16, 0, T) == 16
    assert ratio_at("exp", 16, 50, 101) == pytest.approx(4.0)
    assert ratio_at("linear", 16, 50, 101) == pytest.approx(8.5)
    assert all(codec_at("mxfp4", "fixed", t, T) == ("mxfp4", 8.0) for t in range(T))
    assert codec_at("learned", "exp", 0, T, 8.0) == ("learned", 8.0)
    assert codec_at("learned", "linear", T - 1, T, 8.0) == ("learned", 1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        ratio_at("cosine", 8, 0, 10)


def test_gat_plan_has_one_self_loop_per_node_and_unit_weights():
    g = small_graph()
    ei = torch.cat([g.edge_index, torch.tensor([[3, 3], [3, 3]])], dim=1)  # two extra self loops on node 3
    edges, w = edge_weights(ei, g.num_nodes, "gat")
    loops = edges[0] == edges[1]
    assert int(loops.sum()) == g.num_nodes and (torch.sort(edges[0][loops]).values == torch.arange(g.num_nodes)).all()
    assert (w == 1).all()


def test_attention_refuses_a_plan_built_for_sum_aggregation():
    from slimops.distributed.attention import attention
    from slimops.distributed.comm import Comm
    from slimops.distributed.exchange import HaloContext

    g = small_graph()
    plan = build_plan(g.edge_index, g.num_nodes, torch.zeros(g.num_nodes, dtype=torch.int64), 0, 1, "gcn")
    hctx = HaloContext(plan, Comm(0, 1))
    z = torch.randn(g.num_nodes, 8)
    with pytest.raises(ValueError, match="norm='gat'"):
        attention(z, torch.randn(1, 2, 4), torch.randn(g.num_nodes, 2), hctx, heads=2)
    with pytest.raises(ValueError, match="heads"):
        attention(torch.randn(g.num_nodes, 7), torch.randn(1, 2, 4), torch.randn(g.num_nodes, 2), hctx, heads=2)
