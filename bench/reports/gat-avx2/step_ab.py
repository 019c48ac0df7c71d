"""One FusedGATConv attention step (forward and backward, the projection replaced by the identity) of two versions
in one process, interleaved round by round with PyG's GATConv, minimum over rounds (the first 5 dropped), and the
largest difference between the two versions' gradients.

"old": the Python of a commit (``python/slimops/gat/cpu.py`` and ``eager.py`` from ``git show COMMIT:...``) with a
build of that commit's native module in /tmp/g/abold/_C*.so beside an empty __init__.py (loaded as its own package
``abold._C``, as kernels_ab.py does); "new": the working tree and its installed build. From the repository root:
``.venv/bin/python bench/reports/gat-avx2/step_ab.py COMMIT cora,5000:4,5000:16 [rounds]``."""
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch_geometric.nn import GATConv

import slimops.gat.eager as new
from slimops.gat.bench import named_graph
from slimops.nn import FusedGATConv

sys.path.insert(0, "/tmp/g")
import abold._C as old_native  # noqa: E402


def old_module(name: str, source: str):
    """A module ``slimops.gat.<name>_old`` from the commit's source (relative imports resolve in slimops.gat)."""
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"slimops.gat.{name}_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


commit = sys.argv[1]
show = lambda p: subprocess.run(["git", "show", f"{commit}:{p}"], check=True, capture_output=True, text=True).stdout
old_cpu = old_module("cpu", show("python/slimops/gat/cpu.py"))
old_cpu.native_module = lambda _name: old_native
old = old_module("eager", show("python/slimops/gat/eager.py"))
old.cpu = old_cpu
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 125
print(f"step_ab.py {commit} vs working tree, {torch.get_num_threads()} threads, {rounds} rounds; times in ms, min")
for which in sys.argv[2].split(","):
    ei, H, C = named_graph(which, "/work/shared/data/planetoid")
    N = int(ei.max()) + 1
    torch.manual_seed(0)
    x = torch.randn(N, H * C, requires_grad=True)
    g = torch.randn(N, H * C)
    m = FusedGATConv(H * C, C, heads=H)
    m.lin = torch.nn.Identity()
    p = GATConv(H * C, C, heads=H)
    p.lin = torch.nn.Identity()
    cases = {"old": (m, old._ScoresAttention), "new": (m, new._ScoresAttention), "pyg": (p, None)}
    grads = {}
    for k in ("old", "new"):
        new._ScoresAttention = cases[k][1]
        x.grad = None
        m.zero_grad()
        m(x, ei).backward(g)
        grads[k] = [x.grad.clone()] + [t.grad.clone() for t in m.parameters()]
    rel = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(grads["old"], grads["new"]))
    best = {k: float("inf") for k in cases}
    for r in range(rounds):
        for k, (layer, fn) in (cases.items() if r % 2 else reversed(list(cases.items()))):
            if fn is not None:
                new._ScoresAttention = fn
            t = time.perf_counter()
            layer(x, ei).backward(g)
            if r >= 5:
                best[k] = min(best[k], time.perf_counter() - t)
    new._ScoresAttention = cases["new"][1]
    print(f"{which:8s} {H}x{C}  old {best['old'] * 1e3:.3f}  new {best['new'] * 1e3:.3f}  pyg {best['pyg'] * 1e3:.3f}"
          f" | new/old {best['new'] / best['old']:.3f} | pyg/old {best['pyg'] / best['old']:.2f}  pyg/new "
          f"{best['pyg'] / best['new']:.2f} | gradients: largest difference / largest value {rel:.1e}", flush=True)
