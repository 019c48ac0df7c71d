"""Offline loader of the Planetoid citation graphs (Cora, CiteSeer, PubMed) from their raw files.

The raw files (``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``) are Python 2
pickles of scipy CSR matrices, numpy arrays and a dict of lists. They are read with
an allow-list unpickler, never a bare ``pickle.load``: only numpy arrays and dtypes,
a stand-in for scipy's ``csr_matrix`` (its state is taken as plain arrays, scipy is
not needed) and ``defaultdict``/``list`` can be built; any other class raises
``pickle.UnpicklingError``. The split (140/500/1000 for Cora) and the node order
follow PyG's ``Planetoid`` (``read_planetoid_data``), so results are comparable.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from dataclasses import dataclass

import numpy as np
import torch


class _CSRState:
    """Receives a pickled ``scipy.sparse.csr_matrix``'s state (data, indices, indptr, shape) without scipy."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("csr_matrix state must be a dict")
        self.__dict__.update({k: v for k, v in state.items() if k in ("data", "indices", "indptr", "_shape",
                                                                       "maxprint", "format")})

    def to_dense(self) -> torch.Tensor:
        rows, cols = (int(s) for s in self._shape)
        out = np.zeros((rows, cols), dtype=np.float32)
        indptr = np.asarray(self.indptr, dtype=np.int64)
        if indptr.shape != (rows + 1,) or indptr[-1] > len(self.indices):
            raise ValueError("malformed csr_matrix in a Planetoid file")
        row = np.repeat(np.arange(rows), np.diff(indptr))
        out[row, np.asarray(self.indices, dtype=np.int64)[: indptr[-1]]] = np.asarray(self.data)[: indptr[-1]]
        return torch.from_numpy(out)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("scipy.sparse.csr", "csr_matrix"): lambda: _CSRState,
    ("scipy.sparse._csr", "csr_matrix"): lambda: _CSRState,
    ("collections", "defaultdict"): lambda: collections.defaultdict,
    ("__builtin__", "list"): lambda: list,
    ("builtins", "list"): lambda: list,
}


class AllowListUnpickler(pickle.Unpickler):
    """Builds only the classes in ``_ALLOWED``."""

    def find_class(self, module, name):
        make = _ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: not in the Planetoid allow-list")
        return make()


def safe_load(data: bytes):
    """Unpickle a Planetoid raw file's bytes (Python 2 pickles: ``encoding='latin1'``) with the allow-list."""
    return AllowListUnpickler(io.BytesIO(data), encoding="latin1").load()


@dataclass
class Planetoid:
    x: torch.Tensor           # [N, F] float32
    y: torch.Tensor           # [N] int64
    edge_index: torch.Tensor  # [2, E] int64, both directions, no self-loops, no duplicates (as PyG)
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


def _read(folder: str, prefix: str, name: str):
    path = os.path.join(folder, f"ind.{prefix}.{name}")
    with open(path, "rb") as f:
        data = f.read()
    if name == "test.index":
        return torch.tensor([int(line) for line in data.decode().split()], dtype=torch.int64)
    obj = safe_load(data)
    if isinstance(obj, _CSRState):
        return obj.to_dense()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj)).to(torch.float32)
    if isinstance(obj, dict):
        return obj
    raise pickle.UnpicklingError(f"{path}: unexpected content {type(obj).__name__}")


def raw_folder(root: str, name: str) -> str:
    """``root/<Name>/raw`` (PyG's layout), or ``root`` itself when it holds the files."""
    for cand in (os.path.join(root, name, "raw"), os.path.join(root, name), root):
        if os.path.exists(os.path.join(cand, f"ind.{name.lower()}.graph")):
            return cand
    raise FileNotFoundError(f"no Planetoid raw files for {name} under {root} (expected {name}/raw/ind.{name.lower()}.*)")


def load_planetoid(root: str, name: str = "Cora") -> Planetoid:
    folder, prefix = raw_folder(root, name), name.lower()
    x, tx, allx, y, ty, ally, graph, test_index = (
        _read(folder, prefix, n) for n in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"))
    train_index = torch.arange(y.shape[0])
    val_index = torch.arange(y.shape[0], y.shape[0] + 500)
    sorted_test = test_index.sort()[0]
    if prefix == "citeseer":  # isolated test nodes: zero rows for them, as PyG does
        length = int(test_index.max() - test_index.min()) + 1
        tx_ext, ty_ext = torch.zeros(length, tx.shape[1]), torch.zeros(length, ty.shape[1])
        tx_ext[sorted_test - test_index.min()] = tx
        ty_ext[sorted_test - test_index.min()] = ty
        tx, ty = tx_ext, ty_ext
    x = torch.cat([allx, tx])
    x[test_index] = x[sorted_test]
    labels = torch.cat([ally, ty]).argmax(1)
    labels[test_index] = labels[sorted_test]
    n = labels.shape[0]
    rows, cols = [], []
    for key, value in graph.items():
        rows += [int(key)] * len(value)
        cols += [int(v) for v in value]
    ei = torch.tensor([rows, cols], dtype=torch.int64)
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(ei[0] * n + ei[1])  # coalesce: sorted, duplicates removed
    edge_index = torch.stack([ei // n, ei % n])

    def mask(idx):
        m = torch.zeros(n, dtype=torch.bool)
        m[idx] = True
        return m

    return Planetoid(x, labels, edge_index, mask(train_index), mask(val_index), mask(test_index))
