"""``slimops check``: every family's kernels against its pure-PyTorch reference, on a quick grid.

Each family declares its grid next to its code, in ``slimops/<family>/check.py``:
a function ``cases()`` returning :class:`Case` objects, listed in :data:`CHECKS`
(one line per family; this module imports no family but through it). For every
case and device, each implementation the family declares for the case's op and
dtype (``register_family``, the table ``slimops info`` prints) is forced with
``use_backend(name)`` and its outputs are compared with the reference's on the
same inputs (the reference run on the CPU: the bits every device must give; off the CPU the
reference on the device is one more row):

* bit for bit (``tol=None``): the count of elements whose bits differ, NaN
  payloads included;
* within a stated tolerance (``tol=(atol, rtol)``, or one pair per output): every
  element ``|got - ref| <= atol + rtol * |ref|``, NaN exactly where the
  reference has NaN, infinities equal. The row reports the largest ``|got - ref|``
  and the largest fraction of the allowed error that any element used.

An op with no implementation besides the reference (``gat_merge``) is checked
under ``"reference"`` against the case's own ``oracle`` (an identity the op must
satisfy). A declared backend that cannot run here (not built, Triton on CPU
without ``TRITON_INTERPRET=1``, no CuPy) is a ``skipped`` row with the reason;
in Triton's interpreter the cases marked ``large`` are left out (counted). A
case may be marked as a known defect on some backends (``known``, naming the
issue that tracks it): where it differs it is counted apart and the row reads
``known``; where it matches, the row fails until the mark is removed, so a fix
cannot leave a stale mark. The table has one row per family, op, dtype, backend
and device; :func:`main` returns 1 when any row failed (or nothing ran), else 0.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
import time
from typing import Callable, Optional, Sequence

import torch

from . import _backend

# family -> the module holding its grid (a function ``cases()`` returning a list of Case)
CHECKS = {
    "mx": "slimops.mx.check",
    "slicescale": "slimops.slicescale.check",
    "gat": "slimops.gat.check",
    "gatv2": "slimops.gat.v2_check",
    "rowq": "slimops.rowq.check",
    "mxgemm": "slimops.mxgemm.check",
}

_SHORT = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", None: "-"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One input of one op.

    ``make(device)`` builds the op's arguments on ``device`` (from a fixed seed);
    ``call(*args)`` runs the op under the selected backend and returns a tensor or
    a tuple of tensors; ``oracle(*args)``, when given, returns the expected outputs
    (default: ``call`` under the reference). ``dtype`` keys the family's backend
    table (the input dtype, or dequantize's output dtype). ``tol`` is None (bit
    for bit), an ``(atol, rtol)`` pair, or a sequence of them, one per output
    (None in it: that output bit for bit). ``known`` marks a defect tracked
    elsewhere (see :meth:`known_defect`); ``large`` cases are left out in
    Triton's interpreter.
    """

    op: str
    make: Callable[[str], tuple]
    call: Callable[..., object]
    dtype: Optional[torch.dtype] = None
    label: str = ""
    tol: object = None
    oracle: Optional[Callable[..., object]] = None
    known: Optional[dict] = None
    large: bool = False  # left out in Triton's interpreter (about 2 ms per program instance there)

    def known_defect(self, backend: str, device: str) -> Optional[str]:
        """The reason this case is known to differ on ``backend`` / ``device`` (``known`` maps
        ``"backend/device"``, ``"backend/*"`` or ``"*"`` to the issue that tracks it), else None."""
        k = self.known or {}
        return k.get(f"{backend}/{device}") or k.get(f"{backend}/*") or k.get("*")


@dataclasses.dataclass
class Row:
    family: str
    op: str
    dtype: Optional[torch.dtype]
    backend: str
    device: str
    cases: int = 0
    exact_elems: int = 0  # elements compared bit for bit
    mismatches: int = 0  # of those, elements whose bits differ
    float_elems: int = 0  # elements compared within a tolerance
    max_err: float = 0.0  # largest |got - ref| among them (finite pairs)
    tol_frac: float = 0.0  # largest |got - ref| / (atol + rtol |ref|); > 1 fails
    bad_float: int = 0  # elements outside the tolerance (NaN / Inf placement included)
    errors: int = 0  # cases whose run raised
    first_bad: str = ""  # the first failing case and why
    skipped: str = ""  # why this backend did not run
    known: int = 0  # cases marked as a known defect that differ, as marked
    fixed: int = 0  # cases marked as a known defect that match: the mark is stale
    left_out: int = 0  # large cases not run in Triton's interpreter
    known_why: dict = dataclasses.field(default_factory=dict)  # reason -> cases

    @property
    def result(self) -> str:
        if self.skipped:
            return "skipped"
        if self.mismatches or self.bad_float or self.errors or self.fixed:
            return "FAIL"
        return "known" if self.known else "ok"

    def summary(self) -> str:
        if self.skipped:
            return "-"
        parts = []
        if self.exact_elems or not self.float_elems:
            parts.append(f"{self.mismatches} of {self.exact_elems} differ")
        if self.float_elems:
            parts.append(f"max err {self.max_err:.1e} ({self.tol_frac:.2f} of tol)")
        if self.errors:
            parts.append(f"{self.errors} raised")
        if self.known:
            parts.append(f"{self.known} known-defect cases differ")
        if self.fixed:
            parts.append(f"{self.fixed} known-defect cases match")
        if self.left_out:
            parts.append(f"{self.left_out} large cases left out (interpreter)")
        return "; ".join(parts)


def _outputs(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _tolerances(tol, n: int) -> list:
    if tol is None or (isinstance(tol, tuple) and len(tol) == 2 and all(isinstance(v, (int, float)) for v in tol)):
        return [tol] * n
    tol = list(tol)
    if len(tol) != n:
        raise ValueError(f"a case gives {len(tol)} tolerances for {n} outputs")
    return tol


def _bits(t: torch.Tensor) -> torch.Tensor:
    if t.is_floating_point():
        return t.contiguous().view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
    return t


def compare(row: Row, got, want, tol, label: str) -> None:
    """Add one case's outputs to ``row``: bit mismatches, or error against the tolerance."""
    got, want = _outputs(got), _outputs(want)
    if len(got) != len(want):
        row.errors += 1
        row.first_bad = row.first_bad or f"{label}: {len(got)} outputs, the reference has {len(want)}"
        return
    for i, (g, w, t) in enumerate(zip(got, want, _tolerances(tol, len(want)))):
        g, w = g.detach().cpu(), w.detach().cpu()
        if g.shape != w.shape or g.dtype != w.dtype:
            row.mismatches += max(w.numel(), 1)
            row.exact_elems += w.numel()
            row.first_bad = row.first_bad or (f"{label}: output {i} is {g.dtype}{list(g.shape)}, "
                                              f"the reference's {w.dtype}{list(w.shape)}")
            continue
        if t is None:
            bad = int((_bits(g) != _bits(w)).sum())
            row.exact_elems += w.numel()
            row.mismatches += bad
            if bad and not row.first_bad:
                row.first_bad = f"{label}: output {i}: {bad} of {w.numel()} elements differ"
            continue
        atol, rtol = t
        g64, w64 = g.double(), w.double()
        nan_g, nan_w = torch.isnan(g64), torch.isnan(w64)
        inf = torch.isinf(g64) | torch.isinf(w64)
        special = nan_g | nan_w | inf  # compared by placement, not by size
        zero = torch.zeros_like(g64)
        err = torch.where(special, zero, (g64 - w64).abs())
        frac = torch.where(special, zero, err / (atol + rtol * w64.abs()))
        bad = (nan_g != nan_w) | (inf & (g64 != w64) & ~(nan_g | nan_w)) | (frac > 1)
        row.float_elems += w.numel()
        row.bad_float += int(bad.sum())
        if w.numel():
            row.max_err = max(row.max_err, float(err.max()))
            row.tol_frac = max(row.tol_frac, float(frac.max()))
        if bad.any() and not row.first_bad:
            k = int(bad.flatten().nonzero()[0])
            row.first_bad = (f"{label}: output {i}: {int(bad.sum())} of {w.numel()} outside atol {atol:g} rtol "
                             f"{rtol:g}; first at flat index {k}: {g.flatten()[k].item()!r} vs the reference's "
                             f"{w.flatten()[k].item()!r}")


def backends_of(family: str, op: str, device: str, dtype) -> list:
    """``[(backend, reason it cannot run or None)]``: what the family declares for ``op`` on ``device``, and
    off the CPU the reference itself (the default kernel there too, compared with its run on the CPU)."""
    if op not in _backend.families().get(family, {}):
        return [("reference", None)]  # the op has only its reference: checked against the case's oracle
    out = [] if device == "cpu" else [("reference", None)]
    for impl in _backend.declared(family, op, device, dtype):
        try:
            with _backend.use_backend(impl):
                _backend.resolve(family, op, device, dtype)
            out.append((impl, None))
        except RuntimeError as e:
            out.append((impl, str(e).split(", but ", 1)[-1]))
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:200]


def check_cases(family: str, cases: Sequence[Case], device: str, only: Optional[Sequence[str]] = None,
                rows: Optional[dict] = None) -> dict:
    """Run ``cases`` of ``family`` on ``device`` under every backend it declares (``only`` these, when given)
    and compare with the reference run on the CPU on the same inputs (the bits every device must give).
    Returns the rows, keyed by (family, op, dtype, backend, device); ``rows`` given: added to it."""
    rows = {} if rows is None else rows

    def row(op, dtype, backend) -> Row:
        key = (family, op, dtype, backend, device)
        if key not in rows:
            rows[key] = Row(family, op, dtype, backend, device)
        return rows[key]

    for case in cases:
        impls = [(b, why) for b, why in backends_of(family, case.op, device, case.dtype) if only is None or b in only]
        for b, why in impls:
            if why is not None:  # one row per op, whatever the dtype
                row(case.op, None, b).skipped = why
        runnable = []
        for b, why in impls:
            if why is None and case.large and b == "triton" and device == "cpu":
                row(case.op, case.dtype, b).left_out += 1
            elif why is None:
                runnable.append(b)
        if not runnable:
            continue
        label = f"{case.op} {case.label}".strip()
        try:
            args = case.make(device)
            ref_args = args if device == "cpu" else case.make("cpu")
            if case.oracle is not None:
                want = case.oracle(*ref_args)
            else:
                with _backend.use_backend("reference"):
                    want = case.call(*ref_args)
        except Exception as e:  # the inputs or the reference failed: every backend's row says so
            for b in runnable:
                r = row(case.op, case.dtype, b)
                r.cases += 1
                r.errors += 1
                r.first_bad = r.first_bad or f"{label}: reference: {_first_line(e)}"
            continue
        for b in runnable:
            r = row(case.op, case.dtype, b)
            r.cases += 1
            known = case.known_defect(b, device)
            target = Row(family, case.op, case.dtype, b, device) if known else r
            try:
                with _backend.use_backend(b):
                    got = case.call(*args)
            except Exception as e:
                target.errors += 1
                target.first_bad = target.first_bad or f"{label}: {_first_line(e)}"
            else:
                compare(target, got, want, case.tol, label)
            if known and target.result == "FAIL":  # differs, as marked: counted apart
                r.known += 1
                r.known_why[known] = r.known_why.get(known, 0) + 1
            elif known:  # matches: the defect is gone and the mark must go too
                r.fixed += 1
                r.first_bad = r.first_bad or (f"{label}: marked as a known defect ({known}) but matches the "
                                              "reference: remove the mark from the family's check.py")
    return rows


@functools.lru_cache(maxsize=None)
def family_cases(family: str) -> tuple:
    """The grid ``slimops.<family>.check.cases()`` declares (through :data:`CHECKS`)."""
    return tuple(importlib.import_module(CHECKS[family]).cases())


def _dtype_rank(dtype) -> int:
    return [torch.float32, torch.bfloat16, torch.float16, None].index(dtype) if dtype in _SHORT else 9


def units(families: Sequence[str], devices: Sequence[str], only: Optional[Sequence[str]] = None) -> list:
    """The table's rows to come, ``(family, op, device, backend, dtype)``, in the table's order: per family its
    ops in the order of its grid, then device, backend (as declared) and dtype."""
    out = []
    for family in families:
        ops = list(dict.fromkeys(c.op for c in family_cases(family)))
        for op, dtype in dict.fromkeys((c.op, c.dtype) for c in family_cases(family)):
            for device in devices:
                for i, (b, _) in enumerate(backends_of(family, op, device, dtype)):
                    if only is None or b in only:
                        out.append(((families.index(family), ops.index(op), devices.index(device), i,
                                     _dtype_rank(dtype)), (family, op, device, b, dtype)))
    return [u for _, u in sorted(out, key=lambda x: x[0])]


def run_unit(unit: tuple) -> list:
    """The rows of one unit ``(family, op, device, backend, dtype)``: its cases under that backend alone."""
    family, op, device, backend, dtype = unit
    cases = [c for c in family_cases(family) if c.op == op and c.dtype == dtype]
    return list(check_cases(family, cases, device, [backend]).values())


def run_checks(families: Sequence[str], devices: Sequence[str], only: Optional[Sequence[str]] = None,
               jobs: int = 1) -> list:
    """Run the grids of ``families`` on ``devices`` (backends ``only``, default all); the table rows.

    ``jobs > 1`` runs the units in that many worker processes (spawned): on a fresh GPU machine the
    check is bound by compiling the Triton and NVRTC kernels, which then happens in parallel."""
    todo = units(list(families), list(devices), only)
    if jobs <= 1:
        results = [run_unit(u) for u in todo]
    else:
        import concurrent.futures
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // jobs)  # the workers share the cores, not oversubscribe them
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            futures = [pool.submit(run_unit, u) for u in todo]
            results = []
            for u, f in zip(todo, futures):
                try:
                    results.append(f.result())
                except Exception as e:  # a worker died (a crash in a kernel): the unit fails, the rest goes on
                    r = Row(u[0], u[1], u[4], u[3], u[2], errors=1, first_bad=f"worker process: {_first_line(e)}")
                    results.append([r])
    rows: dict = {}
    for part in results:
        for r in part:  # a backend that cannot run is one row per op, whatever the dtype
            rows.setdefault((r.family, r.op, r.dtype, r.backend, r.device), r)
    return list(rows.values())


def ungridded(devices: Sequence[str]) -> list:
    """Skipped rows for the registered families that declare no grid in :data:`CHECKS` (their kernels unchecked)."""
    return [Row(f, op, None, "-", d, skipped=f"no check grid: add slimops/{f}/check.py and its line in "
                                               "slimops.check.CHECKS")
            for f, ops in _backend.families().items() if f not in CHECKS for op in ops for d in devices]


def format_table(rows: Sequence[Row]) -> str:
    head = ("family", "op", "dtype", "backend", "device", "cases", "max error or bit mismatches", "result")
    body = [(r.family, r.op, _SHORT.get(r.dtype, str(r.dtype)), r.backend, r.device, str(r.cases), r.summary(),
             r.result) for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i == 5 else c.ljust(w) for i, (c, w) in enumerate(zip(x, widths))).rstrip()
             for x in [head, *body]]
    fails = [f"  {r.family}/{r.op}/{_SHORT.get(r.dtype, r.dtype)}/{r.backend}/{r.device}: {r.first_bad}"
             for r in rows if r.result == "FAIL"]
    if fails:
        lines += ["", "failures (the first case of each row):", *fails]
    known: dict = {}  # reason -> {(family, op, backend, device): [dtypes]}
    for r in rows:
        for why, n in r.known_why.items():
            known.setdefault(why, {}).setdefault((r.family, r.op, r.backend, r.device), []).append(
                f"{_SHORT.get(r.dtype, r.dtype)} x{n}")
    if known:
        lines += ["", "known defects (cases that differ as marked in the family's check.py; not failures):"]
        lines += [f"  {why}: " + "; ".join(f"{'/'.join(k)} ({', '.join(v)})" for k, v in where.items())
                  for why, where in known.items()]
    skipped: dict = {}  # (backend, device, reason) -> families
    for r in rows:
        if r.skipped:
            fams = skipped.setdefault((r.backend, r.device, r.skipped), [])
            fams += [] if r.family in fams else [r.family]
    if skipped:
        lines += ["", "skipped:"]
        lines += [f"  {b} on {d} ({', '.join(fams)}): {why}" for (b, d, why), fams in skipped.items()]
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to check (all: CPU, and CUDA when present; default)")
    p.add_argument("--family", nargs="+", metavar="F", help=f"only these families, from {', '.join(CHECKS)}")
    p.add_argument("--backend", nargs="+", metavar="B",
                   help="only these backends (native, triton, nvrtc, reference); default: every declared one")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes (default 1); on a fresh GPU machine, compiling the Triton and NVRTC "
                        "kernels dominates and runs in parallel")


def main(args, devices: Sequence[str]) -> int:
    """``slimops check``: print the table; 0 when every row that ran matched, 1 otherwise, 2 on bad arguments."""
    families = [f for item in (args.family or CHECKS) for f in item.split(",") if f]
    unknown = [f for f in families if f not in CHECKS]
    if unknown:
        print(f"slimops: check: --family: unknown {unknown}; expected from {list(CHECKS)}", file=sys.stderr)
        return 2
    only = [b for item in args.backend for b in item.split(",") if b] if args.backend else None
    if only and set(only) - set(_backend.BACKENDS[1:]):
        print(f"slimops: check: --backend: unknown {sorted(set(only) - set(_backend.BACKENDS[1:]))}; expected "
              f"from {list(_backend.BACKENDS[1:])}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"slimops: check: --jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    rows = run_checks(families, devices, only, args.jobs) + ([] if args.family else ungridded(devices))
    return report(rows, f"{', '.join(devices)}; {time.perf_counter() - t0:.1f} s")


def report(rows: Sequence[Row], where: str) -> int:
    """Print the table and a count line; 1 when a row failed or nothing ran, else 0."""
    print(format_table(rows))
    n = {k: sum(r.result == k for r in rows) for k in ("ok", "known", "FAIL", "skipped")}
    known = f", {n['known']} ok but for known defects" if n["known"] else ""
    print(f"\nslimops check: {n['ok']} ok{known}, {n['FAIL']} failed, {n['skipped']} skipped ({where})")
    if not any(r.cases for r in rows):
        print("slimops check: nothing ran (every backend asked for was skipped)", file=sys.stderr)
        return 1
    return 1 if n["FAIL"] else 0
