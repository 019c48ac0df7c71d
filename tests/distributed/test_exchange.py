"""Multi-process (gloo on loopback) exchange correctness and distributed == single-process training."""

from __future__ import annotations

import pytest
import torch

from slimops._ranks import spawn_ranks

from .helpers import (TIMEOUT, dense_adj, dense_forward, fwd_bwd_worker, gat_dense_forward, gat_oracle_model,
                      small_graph)


def _exchange_worker(rank, world, codec_name, mode, max_message=256 << 20):
    from slimops.distributed.codecs import error_bound, get_codec
    from slimops.distributed.comm import Comm, verify_plan
    from slimops.distributed.exchange import HaloContext, exchange_all
    from slimops.distributed.partition import build_plan, partition

    g = small_graph()
    n = g.num_nodes
    part = partition(g.edge_index, n, world, "random", seed=5)
    plan = build_plan(g.edge_index, n, part, rank, world)
    comm = Comm(rank, world, 20.0, max_message_bytes=max_message)
    verify_plan(comm, plan.send_counts(), plan.recv_counts())
    full = torch.randn(n, 16, generator=torch.Generator().manual_seed(0)) * 3  # every rank knows the truth
    hctx = HaloContext(plan, comm, codec_name, mode)
    z = full[plan.own].clone().requires_grad_()
    halos = exchange_all(z, hctx)
    errs = []
    codec = get_codec(codec_name)
    want_bytes = 0
    for p, h in zip(plan.peers(), halos):
        truth = full[plan.recv_ids[p]]
        errs.append(bool(((h - truth).abs() <= error_bound(codec, truth)).all()))
        want_bytes += codec.nbytes(len(plan.send_idx[p]), 16)
    fwd_bytes = comm.bytes["halo"]
    # backward: each received row gets gradient 1 * (rank + 1); the owner sums them
    sum(((h * (rank + 1)).sum() for h in halos), torch.zeros(())).backward()
    return {"ok": errs, "fwd_bytes": fwd_bytes, "want_bytes": want_bytes, "own": plan.own, "grad": z.grad,
            "part": part, "halos": [h.detach() for h in halos], "bytes": dict(comm.bytes),
            "messages": comm.messages, "largest": comm.largest_message}


@pytest.mark.parametrize("world", [2, 3, 4])
def test_exchange_moves_exactly_the_planned_rows(world):
    res = spawn_ranks(_exchange_worker, world, ("none", "all"), timeout_s=TIMEOUT, run_timeout_s=TIMEOUT)
    part = res[0]["part"]
    g = small_graph()
    for r, out in enumerate(res):
        assert all(out["ok"]), f"rank {r} received wrong rows"
        assert out["fwd_bytes"] == out["want_bytes"]
        # the gradient of a row = sum over the ranks that receive it of (rank + 1)
        src, dst = g.edge_index
        want = torch.zeros(g.num_nodes)
        for q in range(world):
            if q == r:
                continue
            needed = torch.unique(src[(part[dst] == q) & (part[src] == r)])
            want[needed] += q + 1
        torch.testing.assert_close(out["grad"], want[out["own"]][:, None].expand(-1, 16))


@pytest.mark.parametrize("codec", ["mxfp8", "mxfp4", "mxint2", "int8", "int4", "int2"])
def test_exchange_codecs_within_bound_and_byte_exact(codec):
    for out in spawn_ranks(_exchange_worker, 3, (codec, "all"), timeout_s=TIMEOUT, run_timeout_s=TIMEOUT):
        assert all(out["ok"])
        assert out["fwd_bytes"] == out["want_bytes"]


@pytest.mark.parametrize("codec", ["none", "mxint4"])
def test_chunked_exchange_sends_the_same_bytes_and_rows(codec):
    """A tiny message limit (16 bytes: a header) cuts every halo into chunks: the same payload bytes, the same
    rows and gradients bit for bit, no message above the limit, and more messages."""
    whole = spawn_ranks(_exchange_worker, 3, (codec, "all"), timeout_s=TIMEOUT, run_timeout_s=TIMEOUT)
    cut = spawn_ranks(_exchange_worker, 3, (codec, "all", 16), timeout_s=TIMEOUT, run_timeout_s=TIMEOUT)
    for a, b in zip(whole, cut):
        assert a["bytes"] == b["bytes"]  # payload and headers alike: chunks carry none
        assert b["largest"] <= 16 < a["largest"]
        assert b["messages"] > a["messages"]
        for ha, hb in zip(a["halos"], b["halos"]):
            assert torch.equal(ha, hb)
        assert torch.equal(a["grad"], b["grad"])


def _mismatched_limit_worker(rank, world):
    from slimops.distributed.comm import Comm, verify_plan

    verify_plan(Comm(rank, world, 10.0, max_message_bytes=1024 * (rank + 1)), [0] * world, [0] * world)


def test_ranks_with_different_message_limits_fail_at_the_plan_check():
    from slimops._ranks import RankError

    with pytest.raises(RankError) as ei:
        spawn_ranks(_mismatched_limit_worker, 2, (), timeout_s=10, run_timeout_s=60)
    assert all("cut messages at different sizes" in e for e in ei.value.errors.values()), ei.value.errors


def _oracle(model_kind, nodes=240):
    from slimops.distributed.models import DistGNN

    g = small_graph(nodes)
    torch.manual_seed(0)
    model = DistGNN(model_kind, g.x.shape[1], 8, g.num_classes, 2, 0.0, heads=2)
    if model_kind in ("gat", "gatv2"):  # one process: FusedGATConv / FusedGATv2Conv on the deduplicated graph
        convs = gat_oracle_model(model)
        out = gat_dense_forward(convs, g.x, torch.unique(g.edge_index, dim=1))
        params = {"convs." + n: p for n, p in convs.named_parameters()}
    else:
        out = dense_forward(model, g.x, dense_adj(g.edge_index, g.num_nodes, model.norm))
        params = dict(model.named_parameters())
    loss = torch.nn.functional.cross_entropy(out[g.train_mask], g.y[g.train_mask], reduction="sum")
    (loss / int(g.train_mask.sum())).backward()
    return out.detach(), {n: p.grad for n, p in params.items()}


@pytest.mark.parametrize("world,mode,model,partitioner", [
    (1, "sar", "gcn", "metis"), (2, "sar", "gcn", "metis"), (3, "all", "gcn", "random"),
    (4, "sar", "gcn", "random"), (3, "sar", "sage", "contiguous"), (2, "all", "sage", "metis"),
    (1, "sar", "gat", "metis"), (2, "sar", "gat", "metis"), (3, "all", "gat", "random"), (4, "sar", "gat", "random"),
    (1, "sar", "gatv2", "metis"), (2, "all", "gatv2", "metis"), (3, "sar", "gatv2", "random"),
])
def test_distributed_equals_single_process(world, mode, model, partitioner):
    ref_out, ref_grads = _oracle(model)
    res = spawn_ranks(fwd_bwd_worker, world, (model, mode, partitioner), timeout_s=TIMEOUT,
                      run_timeout_s=TIMEOUT)
    out = torch.empty_like(ref_out)
    for r in res:
        out[r["own"]] = r["out"]
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for r in res:
        for name, g in ref_grads.items():
            torch.testing.assert_close(r["grads"][name], g, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_sar_and_all_agree_with_learned_codec():
    """The learned codec's gradients (encoder, decoder) are the same whether SAR rematerialises or autograd saves."""
    a = spawn_ranks(fwd_bwd_worker, 3, ("gcn", "sar", "random", "learned"), timeout_s=TIMEOUT,
                    run_timeout_s=TIMEOUT)
    b = spawn_ranks(fwd_bwd_worker, 3, ("gcn", "all", "random", "learned"), timeout_s=TIMEOUT,
                    run_timeout_s=TIMEOUT)
    for ra, rb in zip(a, b):
        torch.testing.assert_close(ra["out"], rb["out"], rtol=1e-5, atol=1e-6)
        for name in ra["grads"]:
            torch.testing.assert_close(ra["grads"][name], rb["grads"][name], rtol=1e-4, atol=1e-6)
        assert "convs.0.codec.enc_weight" in ra["grads"]
        assert ra["grads"]["convs.0.codec.enc_weight"].abs().sum() > 0
    # SAR fetches the code again in backward: more forward-direction bytes than all-at-once
    assert sum(r["bytes"]["halo"] for r in a) > sum(r["bytes"]["halo"] for r in b)


@pytest.mark.parametrize("model,codec", [("gat", "none"), ("gat", "learned"), ("gat", "int4"),
                                         ("gatv2", "learned"), ("gatv2", "int4")])
def test_gat_sar_and_all_agree_under_attention_dropout(model, codec):
    """SAR fetches every halo again in backward (same codec seed, so the same values) and recomputes the
    attention; with attention dropout and a codec, its outputs and gradients equal the all-at-once mode's
    (to fp32 roundoff: SAR merges the blocks in ring order, the other mode in rank order; a different
    dropout mask or halo would differ by O(1))."""
    a = spawn_ranks(fwd_bwd_worker, 3, (model, "sar", "random", codec, 240, 0.4, 11), timeout_s=TIMEOUT,
                    run_timeout_s=TIMEOUT)
    b = spawn_ranks(fwd_bwd_worker, 3, (model, "all", "random", codec, 240, 0.4, 11), timeout_s=TIMEOUT,
                    run_timeout_s=TIMEOUT)
    for ra, rb in zip(a, b):
        torch.testing.assert_close(ra["out"], rb["out"], rtol=1e-4, atol=1e-4)
        for name in ra["grads"]:
            torch.testing.assert_close(ra["grads"][name], rb["grads"][name], rtol=1e-3, atol=1e-4,
                                       msg=lambda m: f"{name}: {m}")
    if codec == "learned":
        assert a[0]["grads"]["convs.0.codec.enc_weight"].abs().sum() > 0
    # SAR sends every halo twice (forward, and again in backward)
    assert sum(r["bytes"]["halo"] for r in a) > sum(r["bytes"]["halo"] for r in b)


def test_trainer_with_a_tiny_message_limit_trains_the_same():
    """``--max-message-mb``: a SAR GAT run (forward, backward and re-fetch all chunked) gives the same history
    and bytes as the default, and its largest message stays under the limit."""
    from slimops.distributed.train import run_train

    args = ["--dataset", "synthetic", "--nodes", "200", "--degree", "6", "--features", "12", "--classes", "4",
            "--hidden", "8", "--heads", "2", "--model", "gat", "--mode", "sar", "--codec", "int4", "--epochs", "2",
            "--quiet", "--timeout", "20"]
    whole = spawn_ranks(run_train, 2, (args,), timeout_s=20, run_timeout_s=TIMEOUT)[0]
    cut = spawn_ranks(run_train, 2, (args + ["--max-message-mb", str(100 / 2**20)],), timeout_s=20,
                      run_timeout_s=TIMEOUT)[0]
    assert cut["largest_message_bytes"] <= 100 < whole["largest_message_bytes"]
    assert cut["bytes_sent_per_epoch"] == whole["bytes_sent_per_epoch"]
    assert cut["bytes_control"] == whole["bytes_control"]
    assert [h["loss"] for h in cut["history"]] == [h["loss"] for h in whole["history"]]
