"""``slimops check`` (slimops.check and each family's check.py) and the prepared GPU script's dry run."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

import slimops
from slimops import check
from slimops.__main__ import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
NATIVE = pytest.mark.skipif(slimops._backend.native_module("_C") is None, reason="slimops._C not built")


def _env_without_interpreter():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return dict(env, PYTHONUNBUFFERED="1")


@NATIVE
def test_check_passes_here_and_prints_one_row_per_family_op_dtype_backend(tmp_path):
    """The command a user runs after installing: every family, op, dtype and backend of this machine,
    exit status 0; Triton on the CPU is a skipped row with the reason (no TRITON_INTERPRET here). Two worker
    processes: the path a GPU machine takes to compile its kernels in parallel."""
    r = subprocess.run([sys.executable, "-m", "slimops", "check", "--device", "cpu", "--jobs", "2"], cwd=tmp_path,
                       env=_env_without_interpreter(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    lines = r.stdout.splitlines()
    for family, ops in slimops._backend.families().items():
        if family not in check.CHECKS:
            continue
        for op in ops:
            for dtype in (["fp32", "bf16", "fp16"] if op != "mx_convert" else ["-"]):
                row = [ln for ln in lines if ln.split()[:5] == [family, op, dtype, "native", "cpu"]]
                assert len(row) == 1 and row[0].split()[-1] in ("ok", "known"), (family, op, dtype, row)
                assert int(row[0].split()[5]) > 0
            if "triton" not in {b for bs in ops[op].get("cpu", {}).values() for b in bs}:
                continue  # an op without a Triton kernel (gat_scores): no Triton row
            skip = [ln for ln in lines if ln.split()[:4] == [family, op, "-", "triton"]]
            assert len(skip) == 1 and skip[0].endswith("skipped"), (family, op, skip)
    assert any(ln.split()[:4] == ["gat", "gat_merge", "fp32", "reference"] for ln in lines)
    assert "TRITON_INTERPRET=1" in r.stdout and " 0 failed" in r.stdout


@NATIVE
def test_a_broken_bit_exact_kernel_fails_the_check(monkeypatch, capsys, backend_reset):
    """One flipped code bit in the row codec's C++ output: its rows fail with the count, the exit status is 1."""
    from slimops.rowq import cpu

    real = cpu.quantize

    def broken(x, bits, stochastic, seed):
        data, params = real(x, bits, stochastic, seed)
        if data.numel():
            data.view(-1)[-1] ^= 1
        return data, params

    monkeypatch.setattr(cpu, "quantize", broken)
    assert main(["check", "--device", "cpu", "--family", "rowq", "--backend", "native"]) == 1
    out = capsys.readouterr().out
    rows = {tuple(ln.split()[:3]): ln for ln in out.splitlines() if ln.startswith("rowq ")}
    assert rows[("rowq", "rowq_quantize", "fp32")].endswith("FAIL")
    assert "differ" in rows[("rowq", "rowq_quantize", "fp32")]
    assert rows[("rowq", "rowq_dequantize", "fp32")].endswith("ok")
    assert "failures (the first case of each row)" in out and " 3 failed" in out


@NATIVE
def test_a_kernel_outside_its_tolerance_fails_the_check(monkeypatch, capsys, backend_reset):
    """GAT forward off by 1e-3 (tolerance 2e-6 + 2e-5 |ref| in fp32): fp32 fails, with the error it found."""
    from slimops.gat import cpu

    real = cpu.forward
    monkeypatch.setattr(cpu, "forward", lambda *a: (lambda o: (o[0] + 1e-3, o[1]))(real(*a)))
    assert main(["check", "--device", "cpu", "--family", "gat", "--backend", "native"]) == 1
    out = capsys.readouterr().out
    fwd = [ln for ln in out.splitlines() if ln.split()[:3] == ["gat", "gat_forward", "fp32"]]
    assert fwd and fwd[0].endswith("FAIL") and "max err 1.0e-03" in fwd[0]
    assert "outside atol 2e-06 rtol 2e-05" in out


def _run(cases, **kw):
    return list(check.check_cases("demo", cases, "cpu", **kw).values())


def _case(got, want, **kw):
    """An op with only its reference (no register_family entry): ``got`` against its oracle ``want``."""
    return check.Case("demo_op", lambda dev: (), lambda: got, oracle=lambda: want, **kw)


def test_bit_exact_comparison_counts_differing_elements_nan_payloads_included():
    nan2 = torch.tensor([1.0, 0.0], dtype=torch.float32)
    nan2.view(torch.int32)[1] = 0x7FC00001  # another NaN payload
    want = torch.tensor([1.0, float("nan")])
    (r,) = _run([_case(nan2, want), _case((torch.arange(4),), (torch.arange(4) * 2,))])
    assert (r.backend, r.cases, r.exact_elems, r.mismatches, r.result) == ("reference", 2, 6, 4, "FAIL")
    (r,) = _run([_case(want.clone(), want)])
    assert r.result == "ok" and r.summary() == "0 of 2 differ"


def test_tolerance_comparison_places_nan_and_inf_exactly():
    want = torch.tensor([1.0, float("nan"), float("inf"), 100.0])
    ok = torch.tensor([1.0 + 1e-6, float("nan"), float("inf"), 100.001])
    (r,) = _run([_case(ok, want, tol=(1e-5, 1e-5))])
    assert r.result == "ok" and 0 < r.tol_frac <= 1 and r.max_err == pytest.approx(0.001, rel=1e-3)
    for bad in ([1.0, 0.0, float("inf"), 100.0], [1.0, float("nan"), float("-inf"), 100.0],
                [1.1, float("nan"), float("inf"), 100.0]):
        (r,) = _run([_case(torch.tensor(bad), want, tol=(1e-5, 1e-5))])
        assert r.result == "FAIL" and r.bad_float == 1, bad


def test_known_defect_marks_are_strict():
    """A case marked as a known defect that differs is counted apart (not a failure); once it matches,
    the row fails until the mark is removed."""
    a, b = torch.zeros(3), torch.ones(3)
    (r,) = _run([_case(a, b, known={"*": "issue 99"}), _case(a, a)])
    assert (r.result, r.known, r.known_why) == ("known", 1, {"issue 99": 1})
    (r,) = _run([_case(a, a, known={"reference/cpu": "issue 99"})])
    assert r.result == "FAIL" and "remove the mark" in r.first_bad
    (r,) = _run([_case(a, b, known={"native/cuda": "issue 99"})])  # marked elsewhere: an ordinary failure
    assert r.result == "FAIL" and r.known == 0


def test_a_case_that_raises_is_a_failure():
    def boom():
        raise RuntimeError("kernel exploded")

    (r,) = _run([check.Case("demo_op", lambda dev: (), boom, oracle=lambda: torch.zeros(1))])
    assert r.result == "FAIL" and "RuntimeError: kernel exploded" in r.first_bad


def test_every_family_declares_a_grid_through_the_registry():
    """Each registered family has its check.py, found through slimops.check.CHECKS only, with cases for every
    op it registers (a new family adds the file and the registry line)."""
    for family, ops in slimops._backend.families().items():
        assert family in check.CHECKS, f"{family}: no check grid (slimops/{family}/check.py, slimops.check.CHECKS)"
        assert set(ops) <= {c.op for c in check.family_cases(family)}, family
    assert not check.ungridded(["cpu"])


def test_a_registered_family_without_a_grid_is_a_skipped_row(monkeypatch):
    monkeypatch.setitem(slimops._backend._FAMILIES, "nogrid", {"nogrid_op": {"cpu": {None: ("native",)}}})
    rows = check.ungridded(["cpu"])
    assert [(r.family, r.op, r.result) for r in rows] == [("nogrid", "nogrid_op", "skipped")]
    assert "add slimops/nogrid/check.py" in check.format_table(rows)


def test_bad_arguments_exit_2(capsys):
    for args, message in ((["--family", "nope"], "--family: unknown ['nope']"),
                          (["--backend", "cuda"], "--backend: unknown ['cuda']"),
                          (["--jobs", "0"], "--jobs must be >= 1")):
        assert main(["check", "--device", "cpu", *args]) == 2
        assert message in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["check", "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_gpu_script_dry_run_runs_every_step_and_survives_a_failing_one(tmp_path):
    """bench/gpu/check.sh --dry-run: each step's CPU substitute runs and is recorded under $OUT; a step that
    runs out of time (the tests step, capped at 1 s) is recorded as such and the later steps still run."""
    caps = {f"SLIMOPS_GPU_CAP_{s}_S": "600" for s in ("BUILD", "CHECK", "MEMCHECK", "BENCH")}  # a loaded machine
    env = dict(_env_without_interpreter(), **caps, OUT=str(tmp_path), SLIMOPS_GPU_CAP_TESTS_S="1",
               SLIMOPS_GPU_TOTAL_S="2400", SLIMOPS_GPU_DRY_CHECK="--family slicescale", PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "bench/gpu/check.sh"), "--dry-run"], env=env, capture_output=True,
                       text=True, timeout=900)
    summary = (tmp_path / "summary.txt").read_text()
    assert r.returncode == 1, summary  # the tests step timed out
    for n, step in enumerate(("build", "check", "tests", "memcheck", "bench"), 1):
        assert f"{n} {step}: " in summary and (tmp_path / f"{n}-{step}.log").is_file(), summary
    assert "3 tests: TIMEOUT after 1s" in summary
    for step in ("build", "check", "memcheck", "bench"):
        assert f" {step}: ok" in summary, summary
    assert "pip install --no-build-isolation" in (tmp_path / "1-build.log").read_text()
    memcheck = (tmp_path / "4-memcheck.log").read_text()
    assert memcheck.count("slimops check: ") == 5 and "memcheck_gat: exit 0" in memcheck
    assert (tmp_path / "bench.tgz").is_file()
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 files


def test_cuda_selection_plugin_keeps_the_cuda_tests(tmp_path):
    """The GPU script's test selection (bench/gpu/cuda_select.py) on a small slice of the suite."""
    env = dict(_env_without_interpreter(), PYTHONPATH=str(ROOT / "bench" / "gpu"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "cuda_select", "--collect-only", "-q",
                        "tests/mx/test_mx_backends.py", "tests/test_cuda_build.py"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    ids = [ln for ln in r.stdout.splitlines() if "::" in ln]
    assert ids and all("cuda" in i.lower() for i in ids), ids
    assert not any("test_cuda_build" in i for i in ids)
    assert any("test_cuda_matches_reference" in i for i in ids)
    assert "cuda_select:" in r.stdout
