"""compute-sanitizer driver: the GAT CUDA kernels (``gat_forward`` / ``gat_backward``) on the fp32 and bf16
cases of ``slimops.gat.check`` (isolated nodes, self-loops, duplicates, one node, no edge, dropout, NaN / Inf
scores, int32 and int64 indices); then forward on malformed CSRs, whose reads the CUDA kernels guard
(README: no host sync, every read checked): the sanitizer reports any read outside the tensors. Backward on
a malformed CSR is left out: it builds its transposed index with torch ops that assert on the device
(issue 15), which would end the process before the report."""

import torch
from memcheck_common import main

import slimops
from slimops.gat.check import cases, features, graph


def malformed(device: str) -> str:
    h, a_src, a_dst = (t.to(device) for t in features(20, 20, 2, 3, torch.float32, seed=0))
    indptr, indices = (t.to(device) for t in graph("uniform", 20, 20, 4.0, seed=1))
    bad = {"index past N_src": (indptr, torch.where(indices % 5 == 0, indices + 1000, indices)),
           "negative index": (indptr, torch.where(indices % 7 == 0, -indices - 3, indices)),
           "indptr past E": (torch.where(torch.arange(21, device=device) > 15, indptr + 50, indptr), indices),
           "decreasing indptr": (indptr.flip(0), indices)}
    with slimops.use_backend("native"):
        for ip, ix in bad.values():
            torch.ops.slimops.gat_forward(h, a_src, a_dst, ip, ix, 0.2, 0.0, 0, 0)
    if device == "cuda":
        torch.cuda.synchronize()
    return f"forward on malformed CSRs ran ({', '.join(bad)}): outputs not compared"


if __name__ == "__main__":
    raise SystemExit(main("gat", [c for c in cases() if c.dtype != torch.float16],
                          after=lambda dev: malformed(dev) if dev == "cuda" else "malformed CSRs: CUDA only"))
