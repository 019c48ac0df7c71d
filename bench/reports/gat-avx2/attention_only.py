"""One GAT layer's attention, forward and backward, with the projection replaced by the identity in both layers
(slimops FusedGATConv and PyG GATConv get h directly): the attention part without subtracting a separately timed
projection, which on Cora (1433 -> 64 features) is 90 % of the layer and swamps the difference in noise.
Interleaved rounds, minimum and median of 60. From the repository root:
``.venv/bin/python bench/reports/gat-avx2/attention_only.py [--old]`` (--old: the kernels of the build in /tmp/g/abold,
as kernels_ab.py loads it, for both GAT CPU module calls)."""
import sys
import time

import torch
from torch_geometric.nn import GATConv

from slimops.gat.bench import named_graph
from slimops.nn import FusedGATConv

if "--old" in sys.argv[1:]:
    sys.path.insert(0, "/tmp/g")
    import abold._C as old_module

    import slimops.gat.cpu as gat_cpu
    gat_cpu.native_module = lambda _name: old_module


def layer(cls, hc, heads, channels):
    m = cls(hc, channels, heads=heads)
    m.lin = torch.nn.Identity()
    return m


for which in ("cora", "5000:4", "5000:16"):
    ei, heads, channels = named_graph(which, "/work/shared/data/planetoid")
    n = int(ei.max()) + 1
    torch.manual_seed(0)
    x = torch.randn(n, heads * channels, requires_grad=True)
    g = torch.randn(n, heads * channels)
    layers = {"slimops": layer(FusedGATConv, heads * channels, heads, channels),
              "pyg": layer(GATConv, heads * channels, heads, channels)}
    times = {k: [] for k in layers}
    for r in range(65):
        for name, m in layers.items() if r % 2 else reversed(list(layers.items())):
            t0 = time.perf_counter()
            m(x, ei).backward(g)
            if r >= 5:
                times[name].append(time.perf_counter() - t0)
    s, p = sorted(times["slimops"]), sorted(times["pyg"])
    print(f"{which:8s} {heads}x{channels}  slimops min {s[0]*1e3:.3f} ms (median {s[len(s)//2]*1e3:.3f})  "
          f"pyg min {p[0]*1e3:.3f} ms (median {p[len(p)//2]*1e3:.3f})  x pyg {p[0]/s[0]:.2f} (medians "
          f"{p[len(p)//2]/s[len(s)//2]:.2f})", flush=True)
