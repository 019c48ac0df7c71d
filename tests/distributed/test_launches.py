"""Whole launches, as users start them: a finished run exits 0 on every rank, a failing rank at any phase ends the
launch within the timeout with a message naming it and the phase, and leaves no process behind."""

from __future__ import annotations

import json

import pytest

from slimops.distributed.faults import Fault
from slimops.distributed.stress import launch, stress

TIMEOUT = 10  # --timeout of the runs: every collective's bound
TINY = ["--dataset", "synthetic", "--nodes", "200", "--degree", "6", "--features", "12", "--classes", "4",
        "--hidden", "8", "--epochs", "3", "--timeout", str(TIMEOUT), "--quiet"]


def test_short_launches_all_exit_zero():
    """The CI-sized stress run (the long one: ``python -m slimops.distributed.stress``, counts in the report):
    30 launches of 2 ranks started as torchrun starts them, each a few epochs, SAR and all-at-once, GCN, GAT
    and GATv2, an MX and an integer codec. Before ``end_process`` a rank could abort at exit (SIGABRT, "terminate
    called without an active exception") after training had finished."""
    runs = [(mode, model, codec) for mode in ("sar", "all") for model in ("gcn", "gat", "gatv2")
            for codec in ("mxint2", "int4")]
    failures, seen = [], 0
    for i in range(30):
        mode, model, codec = runs[i % len(runs)]
        s = stress(1, 2, TINY + ["--mode", mode, "--model", model, "--codec", codec, "--schedule", "exp"],
                   launcher="direct", timeout=120, seed0=i)
        seen += s["launches"]
        failures += s["failures"]
        assert s["left_behind"] == 0, s
    assert seen == 30 and not failures, failures


# (fault spec, extra arguments, what the survivors or the failing rank must name)
FAULTS = {
    "setup-exit": ("1:setup:exit", [], "exiting in setup"),
    "setup-raise": ("1:setup:raise", [], "injected fault in setup"),
    "forward-raise": ("1:forward:raise", [], "forward exchange"),
    "backward-exit": ("1:backward:exit", [], "backward exchange"),
    "refetch-raise": ("1:refetch:raise", ["--model", "gat", "--mode", "sar"], "re-fetch"),
    "report-raise": ("0:report:raise", [], "injected fault in report"),
    "report-exit": ("0:report:exit", [], "exiting in report"),
    "teardown-exit": ("1:teardown:exit", [], "teardown"),
    "forward-stall": ("1:forward:stall@1", [], "forward exchange"),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_at_every_phase_ends_the_launch(name, tmp_path):
    spec, extra, phase = FAULTS[name]
    report = tmp_path / "out.json"
    r = launch(2, TINY + extra + ["--report", str(report), "--inject-fault", spec], "torchrun",
               timeout=TIMEOUT + 90)
    failing = Fault.parse(spec).rank
    assert not r["ok"] and r["rc"] != [0], r["rc"]
    assert r["seconds"] < TIMEOUT + 30 + 20, r["seconds"]  # + the start of 3 interpreters on a loaded machine
    assert not r["left_behind"], r["left_behind"]
    err = r["stderr"]
    assert phase in err, err[-3000:]
    assert f"rank {failing}" in err, err[-3000:]
    if name.startswith("teardown"):  # training had finished and rank 0 wrote its report: whole, or nothing
        assert not report.exists() or json.loads(report.read_text())["epochs"] == 3
    else:  # rank 0 writes atomically, once training has finished on every rank
        assert not report.exists(), "a failed run left a report"


def test_inject_fault_is_checked_before_any_process_group():
    r = launch(1, TINY + ["--inject-fault", "1:lunch"], "direct", timeout=60)
    assert r["rc"] == [2] and "phase must be an epoch number or one of" in r["stderr"], r["stderr"][-2000:]


def test_a_finished_run_writes_its_report_whole(tmp_path):
    out = tmp_path / "out.json"
    r = launch(2, TINY + ["--report", str(out)], "torchrun", timeout=120)
    assert r["ok"], r["stderr"][-3000:]
    rep = json.loads(out.read_text())
    assert rep["world_size"] == 2 and rep["epochs"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left beside it
