"""FusedGATConv: a drop-in for PyG's ``GATConv`` over the fused GAT op (no E-sized tensor kept for backward)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch
from torch import nn

from . import eager
from .api import attention_weights, csr_from_edge_index, draw_seed, gat_attention, node_scores

FILL_REDUCES = ("add", "sum", "mean", "min", "max", "mul")


def _glorot(t: torch.Tensor) -> None:
    """PyG's glorot: uniform in +-sqrt(6 / (fan_in + fan_out)) over the last two dimensions."""
    bound = math.sqrt(6.0 / (t.size(-2) + t.size(-1)))
    with torch.no_grad():
        t.uniform_(-bound, bound)


@dataclass
class _Graph:
    """One graph as the layer sees it, built once per ``edge_index`` (and sizes).

    The layer's edges are PyG's: the kept input edges (all of them, or those that are not self-loops when
    self-loops are added), then one loop per node ``i < n_loops``. ``indptr`` / ``indices`` are their CSR
    by destination; ``perm[k]`` is the layer edge at CSR position ``k``; ``attr_pos[k]`` the row of
    ``cat([edge_attr, loop_attr])`` that feeds it (input edge id, or ``E + loop``).
    """

    indptr: torch.Tensor
    indices: torch.Tensor
    perm: torch.Tensor
    attr_pos: torch.Tensor
    kept: Optional[torch.Tensor]      # input edge ids kept (None: all)
    kept_dst: torch.Tensor            # their destinations
    n_loops: int
    n_src: int
    edge_index: torch.Tensor          # the input
    _inv: Optional[torch.Tensor] = None
    _csc: Optional[tuple] = None

    def transposed(self) -> tuple:
        """The CPU backward's transposed index of the CSR (``cpu.transpose``), built on first use."""
        if self._csc is None:
            from .cpu import transpose

            self._csc = transpose(self.indptr, self.indices, int(self.n_src))
        return self._csc

    def layer_edge_index(self) -> torch.Tensor:
        """PyG's edge_index after its self-loop handling (what ``return_attention_weights`` returns)."""
        if self.kept is None and self.n_loops == 0:
            return self.edge_index
        ei = self.edge_index if self.kept is None else self.edge_index[:, self.kept]
        loops = torch.arange(self.n_loops, device=ei.device).view(1, -1).repeat(2, 1)
        return torch.cat([ei, loops], dim=1)

    def to_layer_order(self, t: torch.Tensor) -> torch.Tensor:
        """Rows of ``t`` [E, ...] from CSR order to the layer's edge order (differentiable)."""
        if self._inv is None:
            self._inv = torch.empty_like(self.perm)
            self._inv[self.perm] = torch.arange(self.perm.numel(), device=self.perm.device)
        return t[self._inv]


class FusedGATConv(nn.Module):
    """Graph attention layer (Velickovic et al.) with PyG ``GATConv``'s constructor, parameters and forward.

    ``forward(x, edge_index, edge_attr=None, size=None, return_attention_weights=None)``:

    * ``x`` [N, F], or ``(x_src, x_dst)`` for a bipartite graph (``x_dst`` may be None: no destination
      score); ``in_channels`` an int (one ``lin``, shared by both sides) or ``(F_src, F_dst)``
      (``lin_src``, ``lin_dst``); ``size=(N_src, N_dst)`` as PyG (checked against ``x``).
    * ``edge_index`` [2, E] (row 0 source, row 1 destination), or a ``torch.sparse`` COO / CSR adjacency
      ``adj_t`` [N_dst, N_src] (PyG's transposed convention; a 2-d ``values`` is taken as ``edge_attr``).
    * ``edge_attr`` [E, edge_dim] (or [E] when edge_dim = 1), used when ``edge_dim`` is set: each edge's
      score gains ``a_e = (lin_edge(edge_attr).view(E, H, C) * att_edge).sum(-1)``, computed as
      ``edge_attr @ M`` with ``M`` [edge_dim, H] folded from ``lin_edge.weight`` and ``att_edge`` (no
      E x H x C tensor), and enters the fused op as its [E, H] edge score; the self-loops it adds get
      ``fill_value``'s features (``'mean'`` of the node's in-edges by default, a float, a tensor,
      ``'add'``, ``'max'``, ``'min'``, ``'mul'`` or None for ones, as PyG).
    * ``return_attention_weights=True``: returns ``(out, (edge_index, alpha))`` as PyG 2.8: the layer's
      ``edge_index`` (self-loops removed and re-added), ``alpha`` [E, H] in that order, after dropout while
      training (the op's own mask), computed from the saved log-sum-exp only when asked (differentiable).

    Self-loops as PyG: all removed, then one per node ``i < min(N_src, N_dst)`` when ``add_self_loops``.
    Duplicate edges are kept. The graph's CSR (and the permutation that gathers ``edge_attr`` into it) is
    built once and cached for the same ``edge_index`` tensor (identity and version) and sizes.

    Parameters as PyG 2.5+: ``lin.weight`` (or ``lin_src.weight`` and ``lin_dst.weight``), ``att_src``,
    ``att_dst`` [1, H, C], ``lin_edge.weight`` and ``att_edge`` with ``edge_dim``, ``res.weight`` with
    ``residual``, ``bias``: a PyG ``GATConv`` state dict loads unchanged, and ours into PyG's. Not
    supported (clear errors): ``in_channels=-1`` (lazy), MessagePassing options (``aggr``, ``flow``...),
    ``torch_sparse.SparseTensor`` adjacency.
    """

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int, heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 edge_dim: Optional[int] = None, fill_value: Union[float, torch.Tensor, str, None] = "mean",
                 bias: bool = True, residual: bool = False, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"FusedGATConv does not take PyG MessagePassing options: {sorted(kwargs)}")
        pair = in_channels if isinstance(in_channels, (tuple, list)) else (in_channels, in_channels)
        if len(pair) != 2 or not all(isinstance(c, int) and c > 0 for c in pair):
            raise ValueError(f"in_channels must be a positive int or a pair of them (no lazy -1), got {in_channels!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if edge_dim is not None and not (isinstance(edge_dim, int) and edge_dim > 0):
            raise ValueError(f"edge_dim must be a positive int or None, got {edge_dim!r}")
        if not (fill_value is None or isinstance(fill_value, (int, float, torch.Tensor))
                or fill_value in FILL_REDUCES):
            raise ValueError(f"fill_value must be None, a float, a tensor or one of {FILL_REDUCES}, got {fill_value!r}")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.negative_slope, self.dropout = concat, negative_slope, dropout
        self.add_self_loops, self.edge_dim, self.fill_value, self.residual = add_self_loops, edge_dim, fill_value, residual
        hc = heads * out_channels
        self.lin = self.lin_src = self.lin_dst = None
        if isinstance(in_channels, int):
            self.lin = nn.Linear(in_channels, hc, bias=False)
        else:
            self.lin_src = nn.Linear(pair[0], hc, bias=False)
            self.lin_dst = nn.Linear(pair[1], hc, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        if edge_dim is not None:
            self.lin_edge = nn.Linear(edge_dim, hc, bias=False)
            self.att_edge = nn.Parameter(torch.empty(1, heads, out_channels))
        else:
            self.lin_edge = None
            self.register_parameter("att_edge", None)
        total = out_channels * (heads if concat else 1)
        self.res = nn.Linear(pair[1], total, bias=False) if residual else None
        self.bias = nn.Parameter(torch.empty(total)) if bias else None
        self._graph_key: Optional[tuple] = None
        self._graph: Optional[_Graph] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge, self.res):
            if lin is not None:
                _glorot(lin.weight)
        for att in (self.att_src, self.att_dst, self.att_edge):
            if att is not None:
                _glorot(att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # ------------------------------------------------------------------------- the graph

    def graph(self, edge_index: torch.Tensor, n_src: int, n_dst: int, n_loops: int,
              add_loops: Optional[bool] = None) -> _Graph:
        """The layer's graph (PyG's self-loop handling, CSR, permutation); cached for this tensor."""
        add_loops = self.add_self_loops if add_loops is None else add_loops
        key = (edge_index, edge_index._version, n_src, n_dst, n_loops, add_loops, edge_index.device)
        cached = self._graph_key
        if cached is not None and cached[0] is key[0] and cached[1:] == key[1:]:
            return self._graph
        if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got "
                             f"{list(edge_index.shape) if isinstance(edge_index, torch.Tensor) else edge_index!r}")
        n_edges = edge_index.shape[1]
        kept = None
        src, dst = edge_index[0], edge_index[1]
        if add_loops:
            kept = (src != dst).nonzero().flatten()
            loops = torch.arange(n_loops, device=edge_index.device, dtype=edge_index.dtype)
            src, dst = torch.cat([src[kept], loops]), torch.cat([dst[kept], loops])
        else:
            n_loops = 0
        indptr, indices, perm = csr_from_edge_index(torch.stack([src, dst]), n_dst, num_src=n_src, return_perm=True)
        n_kept = n_edges if kept is None else kept.numel()
        if kept is None:
            attr_pos, kept_dst = perm, edge_index[1].long()
        else:
            is_loop = perm >= n_kept
            attr_pos = torch.where(is_loop, perm - n_kept + n_edges, kept[perm.clamp(max=max(n_kept - 1, 0))])
            kept_dst = edge_index[1, kept].long()
        self._graph = _Graph(indptr, indices, perm, attr_pos, kept, kept_dst, n_loops, n_src, edge_index)
        self._graph_key = key
        return self._graph

    def _edge_scores(self, edge_attr: torch.Tensor, g: _Graph, dtype) -> torch.Tensor:
        """a_edge [E_layer, H] in CSR order: (lin_edge(edge_attr) * att_edge).sum(-1) for every layer edge,
        the self-loops' from ``fill_value`` (PyG's compute_loop_attr), gathered through the cached CSR
        permutation (its backward scatters the gradient back to ``edge_attr``)."""
        heads, channels = self.heads, self.out_channels
        ea = edge_attr.view(-1, 1) if edge_attr.dim() == 1 else edge_attr
        if ea.dim() != 2 or ea.shape[1] != self.edge_dim or ea.shape[0] != g.edge_index.shape[1]:
            raise ValueError(f"edge_attr must have shape [E, edge_dim] = {[g.edge_index.shape[1], self.edge_dim]}, "
                             f"got {list(edge_attr.shape)}")
        ea = ea.to(dtype)
        # M [H, D]: lin_edge's weight folded with att_edge, so that a_e = edge_attr @ M^T
        fold = (self.lin_edge.weight.view(heads, channels, -1) * self.att_edge.view(heads, channels, 1)).sum(1)
        scores = ea @ fold.t()
        if g.n_loops:
            scores = torch.cat([scores, self._loop_scores(ea, scores, fold, g)])
        return scores[g.attr_pos]

    def _loop_scores(self, ea, scores, fold, g: _Graph) -> torch.Tensor:
        """The self-loops' edge scores: PyG's loop features (``fill_value``) through ``fold``; a sum or mean
        of the in-edges is linear, so it reduces the H-wide scores rather than the features."""
        kept = slice(None) if g.kept is None else g.kept
        if self.fill_value in ("add", "sum", "mean"):
            return _loop_attr(scores[kept], g.kept_dst, g.n_loops, self.fill_value)
        return _loop_attr(ea[kept], g.kept_dst, g.n_loops, self.fill_value) @ fold.t()

    # ------------------------------------------------------------------------- forward

    def _sizes(self, x_src, x_dst, size):
        n_src = x_src.shape[0]
        n_dst = x_dst.shape[0] if x_dst is not None else None
        if size is not None:
            size = tuple(size)
            for got, want, what in ((n_src, size[0], "x_src"), (n_dst, size[1], "x_dst")):
                if got is not None and want is not None and got != want:
                    raise ValueError(f"{what} has {got} nodes but size says {want}")
            n_src = size[0] if size[0] is not None else n_src
            n_dst = size[1] if size[1] is not None else n_dst
        if n_dst is None:
            n_dst = n_src  # PyG's size_i when the destination side is unknown
        n_loops = min(n_src, n_dst) if size is None or None in size else min(size)
        return n_src, n_dst, n_loops

    def forward(self, x, edge_index, edge_attr: Optional[torch.Tensor] = None, size=None,
                return_attention_weights: Optional[bool] = None):
        heads, channels = self.heads, self.out_channels
        if isinstance(x, torch.Tensor):
            x_src = x_dst = x
            bipartite = False
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            x_src, x_dst = x
            bipartite = True
        else:
            raise TypeError(f"x must be a tensor or a pair (x_src, x_dst), got {type(x).__name__}")
        want = self.in_channels if isinstance(self.in_channels, (tuple, list)) else (self.in_channels,) * 2
        for name, t, f in (("x_src" if bipartite else "x", x_src, want[0]), ("x_dst", x_dst, want[1])):
            if t is not None and (not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != f):
                raise ValueError(f"{name} must have shape [N, {f}], got "
                                 f"{list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        sparse = None if _is_edge_index(edge_index) else _check_sparse(edge_index)
        res = self.res(x_dst) if self.res is not None and x_dst is not None else None
        if self.lin is not None:
            h_src = self.lin(x_src).view(-1, heads, channels)
            h_dst = h_src if not bipartite else (None if x_dst is None else self.lin(x_dst).view(-1, heads, channels))
        else:
            h_src = self.lin_src(x_src).view(-1, heads, channels)
            h_dst = None if x_dst is None else self.lin_dst(x_dst).view(-1, heads, channels)
        n_src, n_dst, n_loops = self._sizes(x_src, x_dst, size if sparse is None else (sparse.shape[1], sparse.shape[0]))
        if sparse is not None:  # PyG's path for a sparse adjacency: its own edge order, duplicates merged
            edge_index, edge_attr = _sparse_edges(sparse, edge_attr, self.add_self_loops, self.fill_value, n_loops)
        g = self.graph(edge_index, n_src, n_dst, n_loops, add_loops=self.add_self_loops and sparse is None)
        a_edge = None
        if edge_attr is not None and self.lin_edge is not None and g.indices.numel():
            a_edge = self._edge_scores(edge_attr, g, h_src.dtype)
        seed = draw_seed() if self.training and self.dropout > 0 else 0
        # the bias goes with the attention when nothing comes between (concat, no residual)
        with_bias = self.bias is not None and self.concat and res is None
        a_src, a_dst, out, lse, fused = self._attend(h_src, h_dst, n_dst, g, a_edge, seed,
                                                     self.bias if with_bias else None)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        if res is not None:
            out = out + res
        if self.bias is not None and not fused:
            out = out + self.bias
        if not return_attention_weights:
            return out
        p = self.dropout if self.training else 0.0
        alpha = g.to_layer_order(attention_weights(a_src, a_dst, g.indptr, g.indices, lse, self.negative_slope,
                                                   a_edge, p, seed))
        if sparse is not None:
            return out, (_to_adjacency(g.layer_edge_index(), alpha, sparse), alpha)
        return out, (g.layer_edge_index(), alpha)

    def _attend(self, h_src, h_dst, n_dst, g: _Graph, a_edge, seed: int, bias=None):
        """The node scores and the fused attention: ``(a_src, a_dst, out, lse, bias_added)``. With one feature
        matrix for both sides, in one autograd step (``eager.scores_attention``, which also adds ``bias`` [H * C]
        to out: in the kernel on the CPU in fp32, with no second N x H x C tensor), unless a subclass overrides
        :meth:`attention` (the benchmark's reference layer)."""
        if h_dst is h_src and type(self).attention is FusedGATConv.attention:
            p = self.dropout if self.training else 0.0
            s, out, lse = eager.scores_attention(h_src, torch.cat([self.att_src, self.att_dst]), g.indptr,
                                                 g.indices, float(self.negative_slope), float(p), seed, 0, a_edge,
                                                 csc=g.transposed if g.indptr.device.type == "cpu" else None,
                                                 bias=bias)
            return s[0], s[1], out, lse, bias is not None
        a_src, a_dst = self._scores(h_src, h_dst, n_dst)
        out, lse = self.attention(h_src, a_src, a_dst, g.indptr, g.indices, a_edge, seed)
        return a_src, a_dst, out, lse, False

    def _scores(self, h_src, h_dst, n_dst):
        """a_src = (h_src * att_src).sum(-1) and a_dst likewise (zeros without x_dst), as PyG, through the
        ``gat_scores`` op: one pass over h forward and one backward (PyG's formula runs six over N x H x C)."""
        if h_dst is h_src:
            a_src, a_dst = node_scores(h_src, torch.cat([self.att_src, self.att_dst]))
            return a_src, a_dst
        a_src = node_scores(h_src, self.att_src)[0]
        if h_dst is None:
            return a_src, h_src.new_zeros(n_dst, self.heads)
        return a_src, node_scores(h_dst, self.att_dst)[0]

    def attention(self, h, a_src, a_dst, indptr, indices, a_edge=None, seed: int = 0):
        """The fused attention aggregation: ``(out [N_dst, H, C], lse [N_dst, H])`` (the benchmark
        overrides it to time the reference)."""
        return gat_attention(h, a_src, a_dst, indptr, indices, self.negative_slope, self.dropout, self.training,
                             seed=seed, a_edge=a_edge, return_lse=True)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"


def _loop_attr(src: torch.Tensor, index: torch.Tensor, n: int, fill) -> torch.Tensor:
    """PyG's compute_loop_attr: the [n, ...] features of the self-loops, from the features ``src`` of the
    edges into ``index`` (their destinations): ones (None), a constant, a tensor, or a reduction of the
    in-edges (scatter as PyG: 0 for a node without in-edges, 1 for 'mul'); edges into a node >= n
    (a bipartite graph's destinations without a loop) are left out."""
    shape = (n,) + tuple(src.shape[1:])
    if fill is None or isinstance(fill, (int, float)):
        return src.new_full(shape, 1.0 if fill is None else float(fill))
    if isinstance(fill, torch.Tensor):
        t = fill.to(src.device, src.dtype)
        return (t if t.dim() == src.dim() else t.unsqueeze(0)).expand(shape)
    inside = index < n
    src, index = src[inside], index[inside].long()
    idx = index.view((-1,) + (1,) * (src.dim() - 1)).expand_as(src)
    if fill in ("add", "sum", "mean"):
        out = src.new_zeros(shape).scatter_add(0, idx, src)
        if fill == "mean":
            count = torch.bincount(index, minlength=n).clamp(min=1).to(out.dtype)
            out = out / count.view((-1,) + (1,) * (src.dim() - 1))
        return out
    if fill == "mul":
        return src.new_ones(shape).scatter_reduce(0, idx, src, "prod", include_self=True)
    return src.new_zeros(shape).scatter_reduce(0, idx, src, "a" + fill, include_self=False)


def _is_edge_index(adj) -> bool:
    return isinstance(adj, torch.Tensor) and adj.layout == torch.strided


def _check_sparse(adj):
    if isinstance(adj, torch.Tensor) and adj.layout in (torch.sparse_coo, torch.sparse_csr) and adj.dim() >= 2:
        return adj
    name = type(adj).__name__
    raise TypeError(f"edge_index must be an integer tensor [2, E] or a torch.sparse COO / CSR adjacency adj_t "
                    f"[N_dst, N_src], got {name}" + (" (torch_sparse.SparseTensor is not supported: pass "
                                                     "adj_t.to_torch_sparse_csr_tensor())" if name == "SparseTensor"
                                                     else f" with layout {adj.layout}" if name == "Tensor" else ""))


def _sparse_edges(adj, edge_attr, add_loops: bool, fill, n_loops: int):
    """PyG's edges of a torch.sparse ``adj_t`` [N_dst, N_src]: in its stored order, or, with self-loops,
    PyG's remove / add / coalesce (sorted by destination then source, duplicates merged with their
    features summed). A 2-d ``values`` is the edge features when ``edge_attr`` is None. Returns
    ``(edge_index [2, E] source-first, edge_attr)``."""
    if adj.layout == torch.sparse_coo:
        (rows, cols), values = adj._indices(), adj._values()
    else:
        crow = adj.crow_indices()
        rows = torch.repeat_interleave(torch.arange(adj.shape[0], device=crow.device), crow.diff())
        cols, values = adj.col_indices(), adj.values()
    from_values = edge_attr is None and values.dim() > 1
    if add_loops:
        if edge_attr is not None:
            raise ValueError("edge_attr cannot go with a sparse adjacency when self-loops are added (PyG refuses it "
                             "too): give the features as the adjacency's values, or pass edge_index [2, E]")
        keep = rows != cols
        rows, cols, values = rows[keep], cols[keep], values[keep]
        loops = torch.arange(n_loops, device=rows.device)
        values = torch.cat([values, _loop_attr(values, rows, n_loops, fill)])
        coo = torch.sparse_coo_tensor(torch.stack([torch.cat([rows, loops]), torch.cat([cols, loops])]), values,
                                      tuple(adj.shape[:2]) + tuple(values.shape[1:])).coalesce()
        (rows, cols), values = coo.indices(), coo.values()
    return torch.stack([cols.long(), rows.long()]), (values if from_values else edge_attr)


def _to_adjacency(edge_index, alpha, like):
    """The layer's edges as ``like``'s kind of sparse adjacency with ``alpha`` as its values (PyG's
    set_sparse_value)."""
    size = (like.shape[0], like.shape[1], alpha.shape[1])
    if like.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(edge_index.flip(0), alpha, size).coalesce()
    crow = torch.zeros(size[0] + 1, dtype=torch.int64, device=alpha.device)
    torch.cumsum(torch.bincount(edge_index[1], minlength=size[0]), 0, out=crow[1:])
    return torch.sparse_csr_tensor(crow, edge_index[0], alpha, size)
