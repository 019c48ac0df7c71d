"""Random graphs for the GAT tests, in CSR by destination (and as PyG edge_index)."""

from __future__ import annotations

import torch


def edge_index(kind: str, n: int, avg_deg: float, seed: int = 0, n_src: int | None = None) -> torch.Tensor:
    """[2, E] (row 0 source, row 1 destination). kinds: uniform, powerlaw, isolated (a third of the
    destinations have no in-edge), selfloops (every node has a self-loop, some two), duplicates."""
    g = torch.Generator().manual_seed(seed)
    n_src = n if n_src is None else n_src
    e = max(1, int(n * avg_deg))
    if kind == "powerlaw":  # Zipf-like source popularity and destination in-degrees
        w = 1.0 / torch.arange(1, n_src + 1, dtype=torch.float64) ** 0.9
        src = torch.multinomial(w, e, replacement=True, generator=g)
        wd = 1.0 / torch.arange(1, n + 1, dtype=torch.float64) ** 0.9
        dst = torch.multinomial(wd, e, replacement=True, generator=g)
        dst = torch.randperm(n, generator=g)[dst]
    else:
        src = torch.randint(0, n_src, (e,), generator=g)
        dst = torch.randint(0, n, (e,), generator=g)
    if kind == "isolated":
        keep = dst % 3 != 0
        src, dst = src[keep], dst[keep]
    elif kind == "selfloops":
        loops = torch.arange(min(n, n_src))
        src, dst = torch.cat([src, loops, loops[::2]]), torch.cat([dst, loops, loops[::2]])
    elif kind == "duplicates":
        src, dst = torch.cat([src, src[: e // 2], src[: e // 4]]), torch.cat([dst, dst[: e // 2], dst[: e // 4]])
    perm = torch.randperm(src.numel(), generator=g)
    return torch.stack([src[perm], dst[perm]])


def csr(kind: str, n: int, avg_deg: float, seed: int = 0, n_src: int | None = None, index_dtype=torch.int64):
    from slimops.gat import csr_from_edge_index

    ei = edge_index(kind, n, avg_deg, seed, n_src)
    return csr_from_edge_index(ei, n, num_src=n_src, index_dtype=index_dtype)


def inputs(n_src: int, n_dst: int, heads: int, channels: int, dtype=torch.float32, seed: int = 0, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed + 1000)
    h = torch.randn(n_src, heads, channels, generator=g).to(dtype)
    a_src = (scale * torch.randn(n_src, heads, generator=g)).to(dtype)
    a_dst = (scale * torch.randn(n_dst, heads, generator=g)).to(dtype)
    return h, a_src, a_dst


def close(actual, expected, atol, rtol, what=""):
    """assert_close that names what differs and where."""
    torch.testing.assert_close(actual.float(), expected.float(), atol=atol, rtol=rtol,
                               msg=lambda m: f"{what}: {m}")
