"""The Planetoid loader: counts and public split from the raw files (skipped when absent); the unpickler's allow-list."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch

from slimops.data.planetoid import SafeUnpickler, find_raw_dir, load_planetoid
from slimops.data.synthetic import synthetic_graph

from .helpers import PLANETOID


def _have(name):
    try:
        find_raw_dir(PLANETOID, name)
        return True
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("name,nodes,edges,classes,feats,train", [
    ("cora", 2708, 10556, 7, 1433, 140), ("citeseer", 3327, 9104, 6, 3703, 120)])
def test_planetoid_counts_and_public_split(name, nodes, edges, classes, feats, train):
    if not _have(name):
        pytest.skip(f"Planetoid raw files for {name} not under {PLANETOID} (set SLIMOPS_PLANETOID)")
    g = load_planetoid(PLANETOID, name)
    assert g.num_nodes == nodes and g.edge_index.shape == (2, edges) and g.num_classes == classes
    assert g.x.shape == (nodes, feats) and g.x.dtype == torch.float32
    assert int(g.train_mask.sum()) == train and int(g.val_mask.sum()) == 500 and int(g.test_mask.sum()) == 1000
    assert not (g.train_mask & g.val_mask).any() and not (g.val_mask & g.test_mask).any()
    # undirected, no self loops, no duplicates
    ei = g.edge_index
    assert (ei[0] != ei[1]).all()
    key = ei[0] * nodes + ei[1]
    assert len(torch.unique(key)) == ei.shape[1]
    assert torch.equal(torch.sort(key).values, torch.sort(ei[1] * nodes + ei[0]).values)
    if name == "cora":
        assert torch.bincount(g.y[g.train_mask]).tolist() == [20] * 7


def test_unpickler_refuses_other_globals():
    evil = pickle.dumps(os.system, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        SafeUnpickler(io.BytesIO(evil)).load()


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Planetoid files ind.cora"):
        load_planetoid(str(tmp_path), "cora")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_planetoid(str(tmp_path), "reddit")


def test_synthetic_graph_is_deterministic_and_undirected():
    a, b = synthetic_graph(500, 8, 16, 5, seed=3), synthetic_graph(500, 8, 16, 5, seed=3)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    n = 500
    key = a.edge_index[0] * n + a.edge_index[1]
    assert torch.equal(torch.sort(key).values, torch.sort(a.edge_index[1] * n + a.edge_index[0]).values)
    assert int(a.train_mask.sum()) == 100


def test_cora_matches_pygs_planetoid():
    """Cora as PyG's Planetoid gives it: counts per class, undirected, no self-loops, binary features."""
    if not _have("cora"):
        pytest.skip(f"Planetoid raw files for cora not under {PLANETOID} (set SLIMOPS_PLANETOID)")
    d = load_planetoid(PLANETOID, "cora", normalize_features=False)
    assert torch.bincount(d.y).tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert (d.edge_index[0] != d.edge_index[1]).all()
    n = d.num_nodes
    fwd = set((d.edge_index[0] * n + d.edge_index[1]).tolist())
    assert fwd == set((d.edge_index[1] * n + d.edge_index[0]).tolist())
    assert set(d.x.unique().tolist()) == {0.0, 1.0}
