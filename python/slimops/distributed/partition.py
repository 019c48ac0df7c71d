"""Graph partitioning and the halo plan (built once: which rows each rank sends to and receives from each other rank).

Every rank loads the same graph; rank 0's partition is the one used (it is
broadcast), so METIS, random and contiguous splits all agree across ranks.
Aggregation weights are those of the whole graph (``gcn``: D^-1/2 (A + I) D^-1/2
with degrees counted on the full graph; ``mean``: 1 / in-degree), so the
distributed layer computes exactly the full-graph layer.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

PARTITIONERS = ("metis", "random", "contiguous")


def partition(edge_index: torch.Tensor, num_nodes: int, world: int, method: str = "metis",
              seed: int = 0) -> torch.Tensor:
    """Owner rank of every node, (num_nodes,) int64."""
    if world < 1:
        raise ValueError(f"world must be >= 1, got {world}")
    if method == "contiguous" or world == 1:
        return torch.arange(num_nodes, dtype=torch.int64) * world // max(num_nodes, 1)
    if method == "random":
        perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
        part = torch.empty(num_nodes, dtype=torch.int64)
        part[perm] = torch.arange(num_nodes, dtype=torch.int64) % world
        return part
    if method == "metis":
        import numpy as np
        import pymetis

        src, dst = edge_index
        order = torch.argsort(src * num_nodes + dst)
        src, dst = src[order], dst[order]
        xadj = torch.zeros(num_nodes + 1, dtype=torch.int64)
        xadj[1:] = torch.cumsum(torch.bincount(src, minlength=num_nodes), 0)
        xadj, adjncy = xadj.numpy().astype(np.int64), dst.numpy().astype(np.int64)
        opts = {"options": pymetis.Options(seed=seed)} if hasattr(pymetis, "Options") else {}
        if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2
            _, parts = pymetis.part_graph(world, pymetis.CSRAdjacency(xadj, adjncy), **opts)
        else:
            _, parts = pymetis.part_graph(world, xadj=xadj, adjncy=adjncy, **opts)
        return torch.as_tensor(np.asarray(parts), dtype=torch.int64)
    raise ValueError(f"partitioner must be one of {PARTITIONERS}, got {method!r}")


def edge_weights(edge_index: torch.Tensor, num_nodes: int, norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges with their weights (self loops added for ``gcn``; for ``gat`` self loops replaced by one per
    node, weights 1 as attention weighs the edges): (2, E') int64 and (E',) float32."""
    src, dst = edge_index
    if norm == "gcn":
        loops = torch.arange(num_nodes, dtype=torch.int64)
        src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
        deg = torch.bincount(dst, minlength=num_nodes).float()
        w = deg[src].rsqrt() * deg[dst].rsqrt()
    elif norm == "mean":
        deg = torch.bincount(dst, minlength=num_nodes).float()
        w = 1.0 / deg[dst]
    elif norm == "gat":  # attention weighs the edges itself; self loops as PyG's GATConv (removed, one added)
        keep = src != dst
        loops = torch.arange(num_nodes, dtype=torch.int64)
        src, dst = torch.cat([src[keep], loops]), torch.cat([dst[keep], loops])
        w = torch.ones(src.numel())
    else:
        raise ValueError(f"norm must be 'gcn', 'mean' or 'gat', got {norm!r}")
    return torch.stack([src, dst]), w


def _csr(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, shape, check_invariants=True)
        return coo.coalesce().to_sparse_csr()


@dataclasses.dataclass
class HaloPlan:
    """What one rank needs for every layer: its nodes, its send and receive lists, its aggregation blocks.

    ``send_idx[p]``: local rows to send to rank ``p``; ``recv_ids[p]``: global ids
    of the rows received from ``p`` (in order). ``adj_local`` (n x n) and
    ``adj_remote[p]`` (n x len(recv_ids[p])) split this rank's rows of the
    normalised adjacency by the owner of the source node; ``*_t`` are transposes.
    """

    rank: int
    world: int
    own: torch.Tensor
    send_idx: list
    recv_ids: list
    adj_local: torch.Tensor
    adj_local_t: torch.Tensor
    adj_remote: list
    adj_remote_t: list
    norm: str = "gcn"

    @property
    def num_local(self) -> int:
        return len(self.own)

    def send_counts(self) -> list:
        return [len(s) for s in self.send_idx]

    def recv_counts(self) -> list:
        return [len(r) for r in self.recv_ids]

    def peers(self) -> list:
        return [p for p in range(self.world) if p != self.rank]

    @property
    def device(self) -> torch.device:
        """Where the aggregation tensors (send indices, adjacency blocks) live."""
        return self.adj_local.device

    def to(self, device) -> "HaloPlan":
        """The plan with its aggregation tensors on ``device`` (``own`` and ``recv_ids``, global ids, stay put)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return dataclasses.replace(self, send_idx=[move(t) for t in self.send_idx], adj_local=move(self.adj_local),
                                   adj_local_t=move(self.adj_local_t),
                                   adj_remote=[move(t) for t in self.adj_remote],
                                   adj_remote_t=[move(t) for t in self.adj_remote_t])


def _compact(t: torch.Tensor) -> torch.Tensor:
    """A CSR block with int32 indices where they fit (what attention's blocks use, so they are not copied)."""
    if max(t.col_indices().numel(), t.shape[1]) >= 2**31 - 1:
        return t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(t.crow_indices().int(), t.col_indices().int(), t.values(), t.shape)


def build_plan(edge_index: torch.Tensor, num_nodes: int, part: torch.Tensor, rank: int, world: int,
               norm: str = "gcn", weighted: "tuple | None" = None) -> HaloPlan:
    """Rank ``rank``'s plan. ``weighted``: :func:`edge_weights`' answer for this graph and ``norm``, when the
    caller builds every rank's plan in one process. GAT plans hold their blocks once, with int32 indices and no
    transposes (attention reads the blocks' structure only)."""
    if part.shape != (num_nodes,):
        raise ValueError(f"part must have shape ({num_nodes},), got {tuple(part.shape)}")
    top = int(part.max()) if num_nodes else 0
    if not (0 <= rank < world) or top >= world:
        raise ValueError(f"rank {rank} / world {world} do not match the partition (largest owner {top})")
    ei, w = weighted if weighted is not None else edge_weights(edge_index, num_nodes, norm)
    src, dst = ei
    own = torch.nonzero(part == rank).flatten()
    local_of = torch.full((num_nodes,), -1, dtype=torch.int64)
    local_of[own] = torch.arange(len(own))
    n = len(own)
    into = part[dst] == rank
    s_in, d_in, w_in = src[into], dst[into], w[into]
    owner = part[s_in]
    send_idx, recv_ids, adj_remote, adj_remote_t = [], [], [], []
    for p in range(world):
        if p == rank:
            m = owner == rank
            adj_local = _csr(local_of[d_in[m]], local_of[s_in[m]], w_in[m], (n, n))
            adj_local_t = _csr(local_of[s_in[m]], local_of[d_in[m]], w_in[m], (n, n))
            send_idx.append(torch.empty(0, dtype=torch.int64))
            recv_ids.append(torch.empty(0, dtype=torch.int64))
            adj_remote.append(None)
            adj_remote_t.append(None)
            continue
        m = owner == p
        ids, col = torch.unique(s_in[m], return_inverse=True)  # sorted sources owned by p
        recv_ids.append(ids)
        adj_remote.append(_csr(local_of[d_in[m]], col, w_in[m], (n, len(ids))))
        adj_remote_t.append(_csr(col, local_of[d_in[m]], w_in[m], (len(ids), n)))
        out = (part[src] == rank) & (part[dst] == p)  # my nodes that p aggregates, sorted like p's recv_ids
        send_idx.append(local_of[torch.unique(src[out])])
    if norm == "gat":
        adj_local, adj_remote = _compact(adj_local), [None if t is None else _compact(t) for t in adj_remote]
        adj_local_t, adj_remote_t = None, [None] * world
    return HaloPlan(rank, world, own, send_idx, recv_ids, adj_local, adj_local_t, adj_remote, adj_remote_t, norm)
