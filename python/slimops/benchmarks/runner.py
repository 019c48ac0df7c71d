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

Multi-process mode (``Suite.multiprocess``): each case runs in ``case.world``
processes (gloo over 127.0.0.1 on CPU, NCCL with one GPU per rank on CUDA),
spawned once per world size by :func:`slimops._ranks.spawn_ranks` (from a fork
server, never from this process, which may run other threads by then). Every rank builds, warms up and times the same
providers in the same interleaved rounds, with a barrier before each timed
batch; the number of calls per round is agreed (the slowest rank's estimate).
A call's time is the **slowest rank's** (max over ranks of that call), and the
minimum and median are taken over those. Every collective is bounded by
``Suite.dist_timeout_s``; a rank that raises (or dies) fails the run with
:class:`slimops._ranks.RankError` naming it, after the others are stopped. The environment
block records ``world_size``, ``dist_backend`` and ``threads_per_rank``.
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

from .._ranks import dist_backend, spawn_ranks, threads_per_rank
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
    # column name -> provider: speedup_vs_<x> = time of that provider / time of this one, each time for the
    # whole case (a provider that runs part of it, share_of < 1, has its time scaled up to the whole)
    speedups: dict = {}
    case_columns: tuple = ()  # the keys of Case.params, shown first in every row
    modes: tuple = ("forward",)
    work_unit = "bytes"  # or "flops"
    quick_default = False
    extra_columns: tuple = ()  # the suite's own row columns (counters, derived figures), after COLUMNS
    roofline = True  # time the dst.copy_(src) roofline in the rounds (False: no frac_of_copy_bw)
    multiprocess = False  # True: each case runs in case.params["world"] processes (the module docstring)
    dist_timeout_s = 60.0  # bound of every collective of a multi-process run, s
    run_timeout_s = 3600.0  # bound of all the cases of one world size, s

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

    def work_of(self, case: Case, provider: str, work: int) -> int:
        """The work of ``provider``'s call: ``work`` (the case's :meth:`work`, measured where the case was built,
        on rank 0 in multi-process mode) unless a provider does other work (a roofline)."""
        return work

    def share_of(self, case: Case, provider: str) -> float:
        """The part of the case's problem one call of ``provider`` solves (1: all of it; less for a provider
        timed on sampled rows), so that the speedups compare times for the whole problem."""
        return 1.0

    extra_columns: tuple = ()  # columns of the suite's own, filled by finish_rows

    def finish_rows(self, rows: list, meta: dict) -> None:
        """Add the suite's own derived columns (``extra_columns``) once every row is measured."""

    def compare(self, case: Case, provider: str, out, oracle_out) -> "bool | None":
        return outputs_match(out, oracle_out)

    def counters(self, inputs: dict) -> dict:
        """Monotonic counters (name -> int) read around the warmup call; their growth goes in the row
        (multi-process: summed over ranks, and ``<name>_per_rank``)."""
        return {}

    def finish_case(self, case: Case, rows: list) -> None:
        """Derived columns of one case's rows, once they are timed (and reduced over ranks)."""

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


def time_interleaved(timed: list, device: str, policy: dict, before=None) -> None:
    """Fill each entry's ``times`` (ms per call), the entries interleaved round by round; ``before(t)``
    runs ahead of each entry's calls (the multi-process barrier)."""
    for r in range(policy["rounds"]):
        for t in timed:
            if t.est_s > policy["slow_s"] and r >= policy["slow_rounds"]:
                continue
            n = int(min(policy["max_calls_per_round"], max(1, policy["round_s"] / max(t.est_s, 1e-7))))
            if before is not None:
                before(t)
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

            c0 = suite.counters(inputs)
            t0 = time.perf_counter()
            peak, method = harness.peak_memory_call(first, case.device, work if suite.work_unit == "bytes" else 0)
            est = time.perf_counter() - t0
            row.update({k: v - c0[k] for k, v in suite.counters(inputs).items()})
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
    matches = {t.provider: suite.compare(case, t.provider, outputs[t.provider], oracle) for t in timed
               if t.times and oracle is not None and t.provider != suite.oracle and outputs.get(t.provider) is not None}
    _fill_rows(suite, case, rows, timed, work, matches)
    del inputs, outputs, oracle, timed
    gc.collect()
    if case.device == "cuda":
        torch.cuda.empty_cache()
    return list(rows.values())


def _fill_rows(suite: Suite, case: Case, rows: dict, timed: list, work: int, matches: dict) -> None:
    """Times, rates, matches and speedups of one case's rows from each provider's per-call times."""
    for t in timed:
        row = rows[t.provider]
        if not t.times:
            continue
        tmin = min(t.times)
        w = suite.work_of(case, t.provider, work)
        row.update(time_ms=tmin, median_ms=harness.quantile(t.times, 0.5), q20_ms=harness.quantile(t.times, 0.2),
                   q80_ms=harness.quantile(t.times, 0.8), repeats=len(t.times), rounds=t.rounds,
                   work=w, work_unit=suite.work_unit)
        if suite.work_unit == "bytes":
            row["gb_s"] = w / (tmin * 1e-3) / 1e9
        else:
            row["tflop_s"] = w / (tmin * 1e-3) / 1e12
        if t.provider in matches:
            row["matches_reference"] = matches[t.provider]
    whole = {p: r["time_ms"] / suite.share_of(case, p) for p, r in rows.items() if r["time_ms"]}
    for p, r in rows.items():
        if r["time_ms"]:
            for col, base in suite.speedups.items():
                if base in whole:
                    r[col] = whole[base] / whole[p]
    suite.finish_case(case, list(rows.values()))
    for r in rows.values():
        if r["status"] == "ok":
            harness.progress(f"  {r['provider']:<20} min {r['time_ms']:10.3f} ms  median {r['median_ms']:10.3f} ms"
                             + (f"  {r['gb_s']:8.2f} GB/s" if r["gb_s"] else ""))
        else:
            harness.progress(f"  {r['provider']:<20} {r['status']}: {r['note']}")


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
        cases = suite.cases(args, device)
        plist = [p for p in suite.providers_for(device) if not only or p in only]
        if suite.multiprocess:
            run.copy[device] = run_multiprocess(run, device, cases, plist, policy, meta, rows)
        else:
            run.copy[device] = _copy_roofline(device) if suite.roofline else None
            for i, case in enumerate(cases, 1):
                harness.progress(f"{suite.name} {device} [{i}/{len(cases)}] {case.label}")
                rows.extend(run_case(run, case, plist, policy))
        copy = run.copy.pop(device)
        if copy is not None and copy.times:
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


# ----------------------------------------------------------------------------- multi-process mode


def _coll_device() -> str:
    """Where the runner's own collectives keep their tensors: NCCL reduces CUDA tensors only."""
    import torch.distributed as dist

    return "cuda" if dist.get_backend() == "nccl" else "cpu"


def _agree(state: dict, providers: list) -> None:
    """A provider not ``ok`` on some rank is dropped on every rank (status code all-reduced, MAX)."""
    import torch.distributed as dist

    if not providers:
        return
    codes = {"ok": 0, "skipped": 1, "error": 2}
    t = torch.tensor([codes[state[p]["status"]] for p in providers], dtype=torch.int64, device=_coll_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    for p, c in zip(providers, t.tolist()):
        if c and state[p]["status"] == "ok":
            state[p].update(status="skipped", note="not ok on another rank")


def _rank_case(run: Run, case: Case, providers: list, policy: dict, copy) -> dict:
    """One case on one rank: build, agree, warm up, agree, time in the same rounds as every other rank."""
    import torch.distributed as dist

    suite = run.suite
    inputs = suite.inputs(case)
    work = suite.work(case)
    state, fns, outputs = {}, {}, {}
    for p in providers:  # build: no communication yet, so a failure here is reported, not fatal
        st = state[p] = dict(status="ok", note="", peak=None, method=None, times=[], rounds=0, counters={},
                             match=None, est=0.0)
        try:
            fns[p], st["note"] = suite.build(case, p, inputs, run.budget)
        except Skip as e:
            st.update(status="skipped", note=str(e))
        except Exception as e:  # noqa: BLE001
            st.update(status="error", note=f"{type(e).__name__}: {first_line(e)}")
    _agree(state, providers)
    for p in providers:  # warmup: every rank calls the same providers; an exception here fails the run
        st = state[p]
        if st["status"] != "ok":
            continue
        try:
            fns[p] = fn = with_mode(fns[p], case.mode)
        except Skip as e:
            st.update(status="skipped", note=str(e))
            continue
        kept: list = []
        c0 = suite.counters(inputs)
        dist.barrier()
        t0 = time.perf_counter()
        st["peak"], st["method"] = harness.peak_memory_call(lambda fn=fn, kept=kept: kept.append(fn()) or kept[-1],
                                                            case.device, work if suite.work_unit == "bytes" else 0)
        st["est"] = time.perf_counter() - t0
        st["counters"] = {k: v - c0[k] for k, v in suite.counters(inputs).items()}
        outputs[p] = kept[0] if case.mode == "forward" else None
    _agree(state, providers)
    ok = [p for p in providers if state[p]["status"] == "ok"]
    est = torch.tensor([state[p]["est"] for p in ok], dtype=torch.float64, device=_coll_device())
    if ok:
        dist.all_reduce(est, op=dist.ReduceOp.MAX)  # the same calls per round on every rank
    timed = [_Timed(p, fns[p], float(e)) for p, e in zip(ok, est.tolist())]
    time_interleaved(timed + ([copy] if copy is not None else []), case.device, policy,
                     before=lambda t: t is copy or dist.barrier())
    oracle = outputs.get(suite.oracle)
    for t in timed:
        state[t.provider].update(times=t.times, rounds=t.rounds)
        if oracle is not None and t.provider != suite.oracle and outputs.get(t.provider) is not None:
            state[t.provider]["match"] = suite.compare(case, t.provider, outputs[t.provider], oracle)
    del inputs, outputs, oracle, timed, fns
    gc.collect()
    return {"work": work, "state": state}


def _rank_cases(rank: int, world: int, run: Run, device: str, cases: list, providers: list, policy: dict) -> dict:
    import torch.distributed as dist

    copy = _copy_roofline(device) if rank == 0 and run.suite.roofline else None  # timed by rank 0 alone
    out = []
    for i, case in enumerate(cases, 1):
        if rank == 0:
            harness.progress(f"{run.suite.name} {device} world {world} [{i}/{len(cases)}] {case.label}")
        out.append(_rank_case(run, case, providers, policy, copy))
    dist.barrier()
    return {"cases": out, "copy": copy.times if copy is not None else []}


def _reduce_case(suite: Suite, case: Case, providers: list, per_rank: list) -> list:
    """One row per provider from every rank's results: each call's time is the slowest rank's."""
    rows = {p: _base_row(suite, case, p) for p in providers}
    timed, matches = [], {}
    for p in providers:
        sts, row = [r["state"][p] for r in per_rank], rows[p]
        bad = [(i, s) for i, s in enumerate(sts) if s["status"] != "ok" and s["note"] != "not ok on another rank"]
        if bad or sts[0]["status"] != "ok":
            i, s = bad[0] if bad else (0, sts[0])
            same = all(x["note"] == s["note"] for x in sts)  # every rank says the same: no rank to name
            row.update(status=s["status"], note=s["note"] if same else f"rank {i}: {s['note']}")
            continue
        row.update(status="ok", note=sts[0]["note"], peak_mem_mb=max(s["peak"] for s in sts) / 1e6,
                   peak_mem_method=sts[0]["method"])
        for k in sts[0]["counters"]:
            row[k] = sum(s["counters"][k] for s in sts)
            row[f"{k}_per_rank"] = [s["counters"][k] for s in sts]
        times = [max(ts) for ts in zip(*(s["times"] for s in sts))]
        timed.append(_Timed(p, None, 0.0, times=times, rounds=sts[0]["rounds"]))
        ms = [s["match"] for s in sts]
        if any(m is not None for m in ms):
            matches[p] = None if None in ms else all(ms)
    _fill_rows(suite, case, rows, timed, per_rank[0]["work"], matches)
    return list(rows.values())


def run_multiprocess(run: Run, device: str, cases: list, providers: list, policy: dict, meta: dict,
                     rows: list) -> _Timed:
    """The cases of a multi-process suite, one spawn per world size; appends to ``rows``, returns rank 0's
    roofline copy times."""
    suite = run.suite
    copy = _Timed("copy", None, 0.0, nbytes=2 * ((1 << 30) if torch.device(device).type == "cuda" else (256 << 20)))
    by_world: dict = {}
    for case in cases:
        world = case.params.get("world")
        if not isinstance(world, int) or world < 1:
            raise ValueError(f"suite {suite.name}: case {case.label!r} needs params['world'] >= 1, got {world!r}")
        by_world.setdefault(world, []).append(case)
    env = meta["env"]
    for world, wcases in by_world.items():
        if world not in env.setdefault("world_size", []):
            env["world_size"].append(world)
        env.setdefault("dist_backend", {})[device] = dist_backend(device)
        env.setdefault("threads_per_rank", {})[str(world)] = threads_per_rank(world)
        harness.progress(f"{suite.name} {device}: world {world}, {dist_backend(device)}, {len(wcases)} cases")
        res = spawn_ranks(_rank_cases, world, (run, device, wcases, providers, policy), device=device,
                          timeout_s=suite.dist_timeout_s, run_timeout_s=suite.run_timeout_s,
                          what=f"benchmark {suite.name!r} on {device}, world {world} ({dist_backend(device)})")
        copy.times.extend(res[0]["copy"])
        for i, case in enumerate(wcases):
            harness.progress(f"{suite.name} {device} world {world} [{i + 1}/{len(wcases)}] {case.label} "
                             "(slowest rank)")
            rows.extend(_reduce_case(suite, case, providers, [r["cases"][i] for r in res]))
    return copy


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
