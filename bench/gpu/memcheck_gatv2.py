"""compute-sanitizer driver: the GATv2 CUDA kernels (``gatv2_forward`` / ``gatv2_backward``) on the fp32 and
bf16 cases of ``slimops.gat.v2_check`` (isolated nodes, self-loops, duplicates, one node, no edge, edge
features of width 0 and 3, dropout, int32 and int64 indices)."""

import torch
from memcheck_common import main

from slimops.gat.v2_check import cases

if __name__ == "__main__":
    raise SystemExit(main("gatv2", [c for c in cases() if c.dtype != torch.float16]))
