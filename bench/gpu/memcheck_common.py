"""Shared by the compute-sanitizer drivers ``bench/gpu/memcheck_<family>.py``: run small cases of one family's
check grid (``slimops.<family>.check``) on its CUDA kernels, compare them with the reference run on the CPU
(so that few other CUDA kernels run under the sanitizer), print the ``slimops check`` table.

Under ``compute-sanitizer --tool memcheck`` with ``PYTORCH_NO_CUDA_MEMORY_CACHING=1`` (each tensor its own
allocation) an access past a tensor's end is reported; the driver's own exit status says whether the
results matched. ``--device cpu`` runs the same cases on the CPU kernels (the script's dry run).
"""

from __future__ import annotations

import argparse
import time

import torch

from slimops import check


def main(family: str, cases, backends=("native",), after=None) -> int:
    """Check ``cases`` under ``backends`` and print the table; then ``after(device)`` (runs checked for memory
    errors only, whose result is not compared)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--max-cases", type=int, default=0, help="every k-th case, at most this many (0: all)")
    args = p.parse_args()
    if args.max_cases > 0:
        cases = cases[::-(-len(cases) // args.max_cases)]
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"memcheck_{family}: --device cuda, but torch sees no CUDA device")
        return 2
    t0 = time.perf_counter()
    rows = list(check.check_cases(family, cases, args.device, list(backends)).values())
    if args.device == "cuda":
        torch.cuda.synchronize()
    status = check.report(rows, f"memcheck_{family} on {args.device}, {len(cases)} cases; "
                                f"{time.perf_counter() - t0:.1f} s")
    if after is not None:  # last: a fault there cannot hide the table above
        print(after(args.device), flush=True)
    return status
