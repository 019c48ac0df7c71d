"""The Planetoid loader: allow-list unpickling, and Cora as PyG's Planetoid gives it."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from slimops.gat.data import load_planetoid, safe_load

ROOT = os.environ.get("SLIMOPS_PLANETOID", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                       "data", "planetoid"))
ROOT = ROOT if os.path.isdir(ROOT) else "/work/shared/data/planetoid"
have_cora = os.path.exists(os.path.join(ROOT, "Cora", "raw", "ind.cora.graph"))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_refuses_classes_outside_allow_list():
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        safe_load(pickle.dumps(_Evil()))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        safe_load(pickle.dumps(torch.nn.Linear(1, 1)))


def test_plain_allowed_objects_load():
    import collections

    import numpy as np

    obj = collections.defaultdict(list, {1: [2, 3]})
    assert safe_load(pickle.dumps(obj, protocol=2)) == obj
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert (safe_load(pickle.dumps(arr, protocol=4)) == arr).all()


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Planetoid raw files"):
        load_planetoid(str(tmp_path), "Cora")


@pytest.mark.skipif(not have_cora, reason=f"Cora raw files not found under {ROOT}")
def test_cora_as_pyg_gives_it():
    d = load_planetoid(ROOT, "Cora")
    assert d.x.shape == (2708, 1433) and d.y.shape == (2708,)
    assert d.edge_index.shape == (2, 10556)  # PyG's Planetoid('Cora').edge_index
    assert (d.train_mask.sum(), d.val_mask.sum(), d.test_mask.sum()) == (140, 500, 1000)
    assert d.num_classes == 7
    assert torch.bincount(d.y).tolist() == [351, 217, 418, 818, 426, 298, 180]
    assert (d.edge_index[0] != d.edge_index[1]).all()
    # undirected: every edge has its reverse
    n = d.num_nodes
    fwd = set((d.edge_index[0] * n + d.edge_index[1]).tolist())
    assert fwd == set((d.edge_index[1] * n + d.edge_index[0]).tolist())
    assert set(d.x.unique().tolist()) == {0.0, 1.0}
