"""FusedGATConv with its bias added by the CPU attention kernel ("fused", the default since 0290224) against the same
layer adding it afterwards ("unfused": out + bias, an N x H x C tensor) and PyG's GATConv, the projection replaced by
the identity in all three; forward and backward, interleaved rounds (the first 10 dropped), minimum (median).
From the repository root: ``.venv/bin/python bench/reports/gat-avx2/bias_fused_ab.py cora|N:degree [rounds]``."""
import sys
import time

import torch
from torch_geometric.nn import GATConv

from slimops.gat.bench import named_graph
from slimops.nn import FusedGATConv


class Unfused(FusedGATConv):
    """The bias added after the attention (as before 0290224): _attend is not given it."""

    def _attend(self, *a, bias=None, **k):
        return super()._attend(*a[:6])


which = sys.argv[1]  # cora, or N:degree (a power-law graph)
ei, H, C = named_graph(which, "/work/shared/data/planetoid")
n = int(ei.max()) + 1
torch.manual_seed(0)
layers = {}
for name, cls in (("fused", FusedGATConv), ("unfused", Unfused), ("pyg", GATConv)):
    m = cls(H * C, C, heads=H)
    m.lin = torch.nn.Identity()
    layers[name] = m
x = torch.randn(n, H * C, requires_grad=True)
g = torch.randn(n, H * C)
ts = {k: [] for k in layers}
R = int(sys.argv[2]) if len(sys.argv) > 2 else 120
for r in range(R):
    items = list(layers.items())
    items = items[r % 3:] + items[:r % 3]  # each layer first in a third of the rounds
    for k, m in items:
        t0 = time.perf_counter()
        m(x, ei).backward(g)
        dt = time.perf_counter() - t0
        if r >= 10:
            ts[k].append(dt)
mins = {k: sorted(v)[0] for k, v in ts.items()}
meds = {k: sorted(v)[len(v) // 2] for k, v in ts.items()}
print(which, "  ".join(f"{k} {mins[k]*1e3:.3f} ({meds[k]*1e3:.3f})" for k in layers),
      f"| pyg/fused {mins['pyg']/mins['fused']:.2f} ({meds['pyg']/meds['fused']:.2f})  "
      f"pyg/unfused {mins['pyg']/mins['unfused']:.2f} ({meds['pyg']/meds['unfused']:.2f})")
