"""The Planetoid citation graphs (Cora, CiteSeer, PubMed) from their raw files, with the public split.

The raw files (``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``, Python 2
pickles of scipy / numpy objects) are read from a directory the user gives,
never downloaded, through an allow-list unpickler: only numpy arrays, the
scipy CSR class (rebuilt here without importing scipy), ``defaultdict`` and
``list`` may be constructed; any other global in a file is an error. The split
is the standard public one (Yang et al. 2016, as in Kipf & Welling and PyG):
the first ``len(y)`` nodes train (140 for Cora, 120 for CiteSeer), the next 500
validate, the 1000 nodes of ``test.index`` test.

>>> g = load_planetoid("/path/to/planetoid", "cora")   # .../Cora/raw/ind.cora.x or .../ind.cora.x
>>> g.num_nodes, g.edge_index.shape, int(g.train_mask.sum())
(2708, torch.Size([2, 10556]), 140)
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle

import numpy as np
import torch

NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


@dataclasses.dataclass
class Graph:
    """A node-classification graph: ``edge_index`` (2, E) holds both directions, no self loops, no duplicates."""

    x: torch.Tensor  # (N, F) float32
    y: torch.Tensor  # (N,) int64
    edge_index: torch.Tensor  # (2, E) int64, row 0 source, row 1 target
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    name: str = ""

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


class _CSR:
    """What a pickled ``scipy.sparse.csr.csr_matrix`` holds (its ``__dict__``), without scipy."""

    def __setstate__(self, state):
        self.__dict__.update(state)

    def to_dense(self) -> np.ndarray:
        rows, cols = self.__dict__["_shape"]
        data, indices, indptr = self.data, self.indices, self.indptr
        out = np.zeros((rows, cols), dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        out[row_of, indices] = data
        return out


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that constructs only an allow-list of globals (numpy arrays, CSR state, defaultdict, list)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("scipy.sparse.csr", "csr_matrix"): lambda: _CSR,
        ("scipy.sparse._csr", "csr_matrix"): lambda: _CSR,
        ("collections", "defaultdict"): lambda: collections.defaultdict,
        ("__builtin__", "list"): lambda: list,
        ("builtins", "list"): lambda: list,
    }

    def find_class(self, module, name):
        make = self.ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a Planetoid file")
        return make()


def safe_load(path: str):
    with open(path, "rb") as f:
        return SafeUnpickler(io.BytesIO(f.read()), encoding="latin1").load()


def find_raw_dir(root: str, name: str) -> str:
    """The directory holding ``ind.<name>.x``: ``root``, ``root/<Name>/raw`` or ``root/<Name>``."""
    name = name.lower()
    if name not in NAMES:
        raise ValueError(f"dataset must be one of {sorted(NAMES)}, got {name!r}")
    for d in (root, os.path.join(root, NAMES[name], "raw"), os.path.join(root, NAMES[name]),
              os.path.join(root, name, "raw"), os.path.join(root, name)):
        if os.path.isfile(os.path.join(d, f"ind.{name}.x")):
            return d
    raise FileNotFoundError(f"no Planetoid files ind.{name}.* under {root!r} "
                            f"(looked in it, in {NAMES[name]}/raw and in {NAMES[name]})")


def _dense(obj) -> np.ndarray:
    return obj.to_dense() if isinstance(obj, _CSR) else np.asarray(obj, dtype=np.float32)


def load_planetoid(root: str, name: str, normalize_features: bool = True) -> Graph:
    """Cora / CiteSeer / PubMed with the public split; features row-normalised (sum 1) unless told not to."""
    name = name.lower()
    d = find_raw_dir(root, name)
    part = {k: safe_load(os.path.join(d, f"ind.{name}.{k}")) for k in ("x", "y", "tx", "ty", "allx", "ally", "graph")}
    with open(os.path.join(d, f"ind.{name}.test.index")) as f:
        test_index = np.array([int(line) for line in f if line.strip()], dtype=np.int64)
    x, tx, allx = (_dense(part[k]) for k in ("x", "tx", "allx"))
    y, ty, ally = (np.asarray(part[k], dtype=np.float32) for k in ("y", "ty", "ally"))
    test_range = np.sort(test_index)
    if name == "citeseer":  # isolated test nodes have no row in tx/ty: pad with zeros
        full = np.arange(test_range.min(), test_range.max() + 1)
        tx_ext = np.zeros((len(full), tx.shape[1]), dtype=np.float32)
        tx_ext[test_range - test_range.min()] = tx
        ty_ext = np.zeros((len(full), ty.shape[1]), dtype=np.float32)
        ty_ext[test_range - test_range.min()] = ty
        tx, ty = tx_ext, ty_ext
    feats = np.concatenate([allx, tx])
    labels = np.concatenate([ally, ty])
    feats[test_index] = feats[test_range]
    labels[test_index] = labels[test_range]
    n = feats.shape[0]
    if normalize_features:
        s = feats.sum(1, keepdims=True)
        feats = feats / np.where(s == 0, 1, s)
    src, dst = [], []
    for node, nbrs in part["graph"].items():
        for m in nbrs:
            src.append(node)
            dst.append(m)
    ei = torch.tensor([src + dst, dst + src], dtype=torch.int64)  # both directions
    ei = ei[:, ei[0] != ei[1]]
    ei = torch.unique(ei[0] * n + ei[1])
    edge_index = torch.stack([ei // n, ei % n])

    def mask(idx) -> torch.Tensor:
        m = torch.zeros(n, dtype=torch.bool)
        m[torch.as_tensor(idx, dtype=torch.int64)] = True
        return m

    ntrain = y.shape[0]
    return Graph(torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(labels.argmax(1)).long(), edge_index,
                 mask(range(ntrain)), mask(range(ntrain, ntrain + 500)), mask(test_range), NAMES[name])
