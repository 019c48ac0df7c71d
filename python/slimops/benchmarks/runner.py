"""The benchmark runner every family's suite plugs into: ``slimops bench [FAMILY ...]``.

A suite (``slimops/<family>/bench.py``, registered in :data:`slimops.benchmarks.SUITES`)
subclasses :class:`Suite` and says *what* to measure: its cases, their inputs,
its providers (slimops' kernels, the reference eager and compiled, a peer
library), the bytes (or FLOPs) each case must move, how to compare outputs, and
its own command-line options. The runner says *how*: the timing policy, the
roofline, peak memory, the skip and error handling, and the report.

Timing policy, made for a shared, noisy machine: for each case every provider
is built and called once (a warmup that also records peak memory), then the
providers are timed **round by round, interleaved** (round r times provider 1,
then 2, ... then the roofline copy), so that a slow spell of the machine hits
every provider alike. Each provider's per-call times over all rounds give the
**minimum** (``time_ms``, the figure GB/s and the speedups use) and the
**median** (``median_ms``), with the 20% and 80% quantiles. A provider slower
than ``slow_s`` a call (the pure-PyTorch reference on big inputs) takes part in
only the first few rounds.

Roofline: ``dst.copy_(src)`` of a buffer far beyond the last-level cache
(256 MiB on CPU, 1 GiB on CUDA), bytes read + written, is timed as one more
provider in the rounds of every case of the run; the run's best copy bandwidth
is the denominator of ``frac_of_copy_bw``.

Modes (``Suite.modes``): ``forward`` times the provider's function;
``backward`` runs it once and times ``torch.autograd.backward`` of its outputs
(``retain_graph=True``) with fixed upstream gradients; ``full`` times forward
plus backward. A suite whose functions return no differentiable output has
only ``forward``.

Every row has the case's own columns (``Suite.case_columns``), then
:data:`COLUMNS`; the report is ``<out>/bench_<family>.{json,csv,png}`` with the
device, versions, date and policy in its ``meta``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import io
import logging
import time
from pathlib import Path

import torch

from . import harness

MODES = ("forward", "backward", "full")
COLUMNS = ["provider", "mode", "status", "time_ms", "median_ms", "q20_ms", "q80_ms", "repeats", "rounds",
           "work", "work_unit", "gb_s", "tflop_s", "frac_of_copy_bw", "peak_mem_mb", "peak_mem_method",
           "matches_reference", "note"]
COLUMN_DOC = {
    "time_ms": "minimum time of one call over all rounds, ms",
    "median_ms": "median time of one call, ms",
    "q20_ms": "20% quantile of the call times, ms", "q80_ms": "80% quantile, ms",
    "repeats": "timed calls (after the warmup)", "rounds": "interleaved rounds this provider took part in",
    "work": "bytes read + written (work_unit 'bytes') or floating-point operations ('flops') of one call",
    "gb_s": "bytes / time_ms, GB/s (1e9 bytes)", "tflop_s": "flops / time_ms, TFLOP/s",
    "frac_of_copy_bw": "gb_s / the run's best dst.copy_(src) bandwidth on the device",
    "peak_mem_mb": "peak memory of one call, MB (1e6 bytes), see peak_mem_method",
    "matches_reference": "output equal to the suite's oracle provider's (None: not comparable or not run)",
}
PEAK_METHODS = {"cuda_max_allocated": "torch.cuda.max_memory_allocated during one call, above what was allocated "
                                      "before it",
                "rss_hwm": "growth of the process's VmHWM during one call, at least its outputs (an estimate)",
                "io_bytes": "bytes of inputs and outputs (not measured)"}


class Skip(Exception):
    """A provider that cannot run a case; the message is the reason."""


@dataclasses.dataclass
class Case:
    """One measured configuration: a device, a mode and the suite's own parameters."""

    device: str
    params: dict
    mode: str = "forward"

    def __getattr__(self, name):  # case.op, case.fmt, ... read the suite's parameters
        try:
            return self.__dict__["params"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def label(self) -> str:
        vals = ["x".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in self.params.values()]
        return " ".join(vals + ([self.mode] if self.mode != "forward" else []))


@dataclasses.dataclass
class CompileBudget:
    """Total seconds ``torch.compile`` may take over a run; once spent, compiled providers are skipped."""

    total_s: float
    spent_s: float = 0.0
    compiles: int = 0

    def compile(self, fn, args: tuple, device: str, **kwargs):
        """``torch.compile(fn)``, called once on ``args`` (the compile); raises :class:`Skip` past the budget."""
        if self.spent_s >= self.total_s:
            raise Skip(f"compile budget of {self.total_s:.0f}s spent ({self.compiles} compiles)")
        torch._dynamo.reset()  # one compiled function per case: keep dynamo's recompile limit out of the way
        compiled = torch.compile(fn, **kwargs)
        t0 = time.perf_counter()
        try:
            compiled(*args)
            harness.sync(device)
        except Exception as e:
            raise Skip(f"torch.compile failed: {type(e).__name__}: {first_line(e)}") from None
        finally:
            self.spent_s += time.perf_counter() - t0
            self.compiles += 1
        return compiled, time.perf_counter() - t0


class Suite:
    """What a family measures. Subclass it in ``slimops/<family>/bench.py`` and name it ``SUITE``.

    Override :meth:`cases`, :meth:`inputs`, :meth:`build`, :meth:`work`; the rest has defaults.
    """

    name = "suite"
    title = "slimops microbenchmarks"
    providers: tuple = ()  # in the order they are timed in each round
    oracle: "str | None" = None  # the provider whose output the others are compared with
    speedups: dict = {}  # column name -> provider: speedup_vs_<x> = time of that provider / time of this one
    case_columns: tuple = ()  # the keys of Case.params, shown first in every row
    modes: tuple = ("forward",)
    work_unit = "bytes"  # or "flops"
    quick_default = False

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """The suite's own options (``slimops bench FAMILY --help``)."""

    def check_arguments(self, args: argparse.Namespace) -> None:
        """Refuse bad options before any work (raise SystemExit with one clear line)."""

    def cases(self, args: argparse.Namespace, device: str) -> list:
        raise NotImplementedError

    def providers_for(self, device: str) -> list:
        return list(self.providers)

    def inputs(self, case: Case) -> dict:
        raise NotImplementedError

    def build(self, case: Case, provider: str, inputs: dict, budget: CompileBudget) -> tuple:
        """(callable, note) for ``provider`` on ``case``; raise :class:`Skip` with the reason."""
        raise NotImplementedError

    def work(self, case: Case) -> int:
        """Bytes read + written (or FLOPs) of one call, the same for every provider."""
        raise NotImplementedError

    def work_of(self, case: Case, provider: str) -> int:
        """The work of ``provider``'s call: :meth:`work` unless a provider does other work (a roofline)."""
        return self.work(case)

    extra_columns: tuple = ()  # columns of the suite's own, filled by finish_rows

    def finish_rows(self, rows: list, meta: dict) -> None:
        """Add the suite's own derived columns (``extra_columns``) once every row is measured."""

    def compare(self, case: Case, provider: str, out, oracle_out) -> "bool | None":
        return outputs_match(out, oracle_out)

    def timing(self, device: str, quick: bool) -> dict:
        return timing_policy(device, quick)

    def plot(self, path: Path, rows: list, meta: dict) -> Path:
        hl = {d: (bw, f"copy {bw:.0f} GB/s") for d, bw in meta["copy_bw_gb_s"].items()}
        cols = [c for c in self.case_columns if c != "shape"]
        value = "gb_s" if self.work_unit == "bytes" else "tflop_s"
        return harness.plot_bars(path, rows, group_key=lambda r: "\n".join(str(r[c]) for c in cols)
                                 + ("" if r.get("mode") in (None, "forward") else f"\n{r['mode']}"),
                                 series_key="provider", value_key=value,
                                 ylabel="GB/s (read + write)" if value == "gb_s" else "TFLOP/s",
                                 title=self.title, hlines=hl if value == "gb_s" else None)

    # the text table printed at the end
    table_columns = [("time_ms", "ms"), ("median_ms", "median"), ("gb_s", "GB/s"), ("frac_of_copy_bw", "of copy"),
                     ("peak_mem_mb", "peak MB")]


# ----------------------------------------------------------------------------- helpers


def first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else ""


@contextlib.contextmanager
def quiet_peer(*loggers: str):
    """Keep a peer library's import-time chatter out of the report: ``loggers`` (and torch's pytree
    deprecation notices, which importing torchao triggers) at ERROR, Python-level stderr captured."""
    names = (*loggers, "torch.utils._pytree")
    saved = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


def _as_bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(ints)


def outputs_match(a, b) -> "bool | None":
    """Bit-equality of two outputs (a tensor or a tuple of tensors); None when they are not comparable."""
    a = a if isinstance(a, (tuple, list)) else (a,)
    b = b if isinstance(b, (tuple, list)) else (b,)
    if len(a) != len(b) or not all(isinstance(t, torch.Tensor) for t in (*a, *b)):
        return None
    for x, y in zip(a, b):
        if x.shape != y.shape or x.element_size() != y.element_size():
            return False
        if not torch.equal(_as_bits(x), _as_bits(y)):
            return False
    return True


def timing_policy(device: str, quick: bool) -> dict:
    """Rounds and per-provider budgets: ``rounds`` interleaved rounds, each timing a provider for about
    ``round_s`` seconds (at least one call); providers past ``slow_s`` a call take part in ``slow_rounds``."""
    if quick:
        return dict(rounds=3, round_s=0.01, max_calls_per_round=5, slow_s=0.25, slow_rounds=2)
    if device == "cuda":
        return dict(rounds=15, round_s=0.02, max_calls_per_round=50, slow_s=0.5, slow_rounds=3)
    return dict(rounds=15, round_s=0.03, max_calls_per_round=20, slow_s=0.25, slow_rounds=3)


def _differentiable_outputs(out) -> list:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [t for t in outs if isinstance(t, torch.Tensor) and t.requires_grad]


def with_mode(fn, mode: str, seed: int = 0):
    """The callable timed for ``mode``: ``fn`` itself, its backward alone, or both."""
    if mode == "forward":
        return fn
    outs = _differentiable_outputs(fn())
    if not outs:
        raise Skip(f"mode {mode!r}: the provider's output needs no gradient")
    g = torch.Generator(device=outs[0].device).manual_seed(seed)
    grads = [torch.randn(o.shape, generator=g, device=o.device, dtype=torch.float32).to(o.dtype) for o in outs]
    if mode == "backward":
        return lambda: torch.autograd.backward(outs, grads, retain_graph=True)

    def full():
        o = _differentiable_outputs(fn())
        torch.autograd.backward(o, grads)
        return o

    return full


@dataclasses.dataclass
class _Timed:
    provider: str
    fn: object
    est_s: float
    times: list = dataclasses.field(default_factory=list)
    rounds: int = 0
    nbytes: int = 0  # bytes moved by one call (the roofline copy)


def _copy_roofline(device: str) -> _Timed:
    nbytes = (1 << 30) if torch.device(device).type == "cuda" else (256 << 20)
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    return _Timed("copy", lambda: dst.copy_(src), 0.0, nbytes=2 * nbytes)


def time_interleaved(timed: list, device: str, policy: dict) -> None:
    """Fill each entry's ``times`` (ms per call), the entries interleaved round by round."""
    for r in range(policy["rounds"]):
        for t in timed:
            if t.est_s > policy["slow_s"] and r >= policy["slow_rounds"]:
                continue
            n = int(min(policy["max_calls_per_round"], max(1, policy["round_s"] / max(t.est_s, 1e-7))))
            t.times.extend(harness.time_calls(t.fn, n, device))
            t.rounds += 1


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class Run:
    suite: Suite
    args: argparse.Namespace
    budget: CompileBudget
    copy: dict = dataclasses.field(default_factory=dict)  # device -> _Timed of the roofline copy


def _base_row(suite: Suite, case: Case, provider: str) -> dict:
    row = {"device": case.device}
    row.update({c: ("x".join(map(str, v)) if isinstance(v, tuple) else v) for c, v in case.params.items()})
    row.update({c: None for c in COLUMNS})
    row.update({c: None for c in suite.speedups})
    row.update({c: None for c in suite.extra_columns})
    row.update(provider=provider, mode=case.mode, note="")
    return row


def run_case(run: Run, case: Case, providers: list, policy: dict) -> list:
    """Build, warm up and time every provider on one case, interleaved; rows with everything but the roofline."""
    suite = run.suite
    inputs = suite.inputs(case)
    work = suite.work(case)
    rows, timed, outputs = {}, [], {}
    for provider in providers:
        row = rows[provider] = _base_row(suite, case, provider)
        try:
            fn, note = suite.build(case, provider, inputs, run.budget)
            fn = with_mode(fn, case.mode)
            kept: list = []

            def first(fn=fn, kept=kept):
                out = fn()
                kept.append(out)
                return out

            t0 = time.perf_counter()
            peak, method = harness.peak_memory_call(first, case.device, work if suite.work_unit == "bytes" else 0)
            est = time.perf_counter() - t0
            outputs[provider] = kept[0] if case.mode == "forward" else None
            row.update(status="ok", note=note, peak_mem_mb=peak / 1e6, peak_mem_method=method)
            timed.append(_Timed(provider, fn, est))
        except Skip as e:
            row.update(status="skipped", note=str(e))
        except torch.OutOfMemoryError:
            row.update(status="error", note="out of memory")
        except Exception as e:  # report and go on with the next provider
            row.update(status="error", note=f"{type(e).__name__}: {first_line(e)}")
    copy = run.copy.get(case.device)
    try:
        time_interleaved(timed + ([copy] if copy is not None else []), case.device, policy)
    except Exception as e:  # a provider that fails while timed: its row says so, the others keep theirs
        for t in timed:
            if not t.times:
                rows[t.provider].update(status="error", note=f"{type(e).__name__}: {first_line(e)}")
    oracle = outputs.get(suite.oracle)
    for t in timed:
        row = rows[t.provider]
        if not t.times:
            continue
        tmin = min(t.times)
        work = suite.work_of(case, t.provider)
        row.update(time_ms=tmin, median_ms=harness.quantile(t.times, 0.5), q20_ms=harness.quantile(t.times, 0.2),
                   q80_ms=harness.quantile(t.times, 0.8), repeats=len(t.times), rounds=t.rounds,
                   work=work, work_unit=suite.work_unit)
        if suite.work_unit == "bytes":
            row["gb_s"] = work / (tmin * 1e-3) / 1e9
        else:
            row["tflop_s"] = work / (tmin * 1e-3) / 1e12
        if oracle is not None and t.provider != suite.oracle and outputs.get(t.provider) is not None:
            row["matches_reference"] = suite.compare(case, t.provider, outputs[t.provider], oracle)
    ok = {p: r["time_ms"] for p, r in rows.items() if r["time_ms"]}
    for r in rows.values():
        if r["time_ms"]:
            for col, base in suite.speedups.items():
                if base in ok:
                    r[col] = ok[base] / r["time_ms"]
    for r in rows.values():
        if r["status"] == "ok":
            harness.progress(f"  {r['provider']:<20} min {r['time_ms']:10.3f} ms  median {r['median_ms']:10.3f} ms"
                             + (f"  {r['gb_s']:8.2f} GB/s" if r["gb_s"] else ""))
        else:
            harness.progress(f"  {r['provider']:<20} {r['status']}: {r['note']}")
    del inputs, outputs, oracle, timed
    gc.collect()
    if case.device == "cuda":
        torch.cuda.empty_cache()
    return list(rows.values())


def run_suite(suite: Suite, args: argparse.Namespace, devices: list) -> tuple:
    """Run ``suite`` on ``devices``; return (meta, rows)."""
    t_start = time.perf_counter()
    quick = bool(getattr(args, "quick", False))
    budget = CompileBudget(getattr(args, "compile_budget", 180.0))
    meta = {"benchmark": suite.name, "title": suite.title, "env": harness.environment(devices), "quick": quick,
            "copy_bw_gb_s": {}, "timing": {}, "columns": COLUMN_DOC, "peak_mem_methods": PEAK_METHODS,
            "providers": list(suite.providers), "oracle": suite.oracle, "speedups": suite.speedups,
            "options": {k: v for k, v in vars(args).items() if k not in ("func", "families")}}
    run = Run(suite, args, budget)
    rows = []
    only = getattr(args, "providers", None)
    for device in devices:
        policy = suite.timing(device, quick)
        meta["timing"][device] = policy
        run.copy[device] = _copy_roofline(device)
        cases = suite.cases(args, device)
        plist = [p for p in suite.providers_for(device) if not only or p in only]
        for i, case in enumerate(cases, 1):
            harness.progress(f"{suite.name} {device} [{i}/{len(cases)}] {case.label}")
            rows.extend(run_case(run, case, plist, policy))
        copy = run.copy.pop(device)
        if copy.times:
            meta["copy_bw_gb_s"][device] = copy.nbytes / (min(copy.times) * 1e-3) / 1e9
            harness.progress(f"{device}: best dst.copy_(src) over the run {meta['copy_bw_gb_s'][device]:.1f} GB/s "
                             f"({len(copy.times)} calls, {harness.device_name(device)})")
        del copy
    for r in rows:
        bw = meta["copy_bw_gb_s"].get(r["device"])
        if r["gb_s"] and bw:
            r["frac_of_copy_bw"] = r["gb_s"] / bw
    suite.finish_rows(rows, meta)
    meta["compile"] = {"budget_s": budget.total_s, "spent_s": round(budget.spent_s, 1), "compiles": budget.compiles}
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    return meta, rows


# ----------------------------------------------------------------------------- reports


def row_columns(suite: Suite) -> list:
    return ["device", *suite.case_columns, *COLUMNS, *suite.speedups, *suite.extra_columns]


def table(suite: Suite, rows: list) -> str:
    cols = ["device", *suite.case_columns, "provider"] + (["mode"] if len(suite.modes) > 1 else [])
    cols += [c for c, _ in suite.table_columns]
    heads = cols[: len(cols) - len(suite.table_columns)] + [h for _, h in suite.table_columns]
    cols += [*suite.speedups, "matches_reference", "note"]
    heads += ["x " + p for p in suite.speedups.values()] + ["= ref", "note"]
    show = []
    for r in rows:
        r = dict(r)
        r["note"] = (r["note"] or "")[:60]
        show.append(r)
    return harness.format_table(show, cols, heads)


def write_reports(suite: Suite, out: Path, meta: dict, rows: list, name: "str | None" = None) -> dict:
    out = Path(out)
    stem = name or f"bench_{suite.name}"
    paths = {"json": harness.write_json(out / f"{stem}.json", meta, rows),
             "csv": harness.write_csv(out / f"{stem}.csv", rows, row_columns(suite))}
    try:
        paths["png"] = suite.plot(out / f"{stem}.png", rows, meta)
    except ImportError as e:
        harness.progress(f"no plot: {e}")
    return paths


def print_summary(suite: Suite, meta: dict, rows: list, paths: dict) -> None:
    env = meta["env"]
    print()
    print(f"{suite.title}, {env['date']}, torch {env['versions']['torch']}, slimops {env['versions']['slimops']}")
    for d, bw in meta["copy_bw_gb_s"].items():
        print(f"  {d}: {env['devices'][d]}, best copy bandwidth over the run {bw:.1f} GB/s")
    print()
    print(table(suite, rows))
    print()
    print("reports: " + ", ".join(str(p) for p in paths.values()) + f"  ({meta['wall_s']:.0f}s)")
