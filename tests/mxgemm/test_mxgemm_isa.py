"""mx_linear on the AVX2 build's kernels and the SSE2 baseline's (the generic kernel alone), in a subprocess
with SLIMOPS_CPU_ISA set (the ISA is picked once per process), as tests/mx/test_mx_every_value.py does."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import slimops
from slimops.testing import skip_if_default_isa


def test_requested_isa_is_active():
    """Under SLIMOPS_CPU_ISA (test_lower_isa's subprocess) the kernels run that ISA, and mx_linear its generic
    kernel there."""
    isa = os.environ.get("SLIMOPS_CPU_ISA")
    if not isa:
        pytest.skip("SLIMOPS_CPU_ISA not set: the kernels run the best ISA of this CPU")
    assert slimops.info()["cpu_features"]["isa"] == isa
    assert slimops._C.mx_linear_path(1, 1, 64, 64, 7, 32) == "generic"


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_lower_isa(isa):
    info = slimops.info()
    if not info["native_cpu_built"]:
        pytest.skip("slimops._C not built")
    if isa != "baseline" and info["cpu_features"].get("isa_detected") in (None, "baseline"):
        pytest.skip(f"this CPU has no {isa}")
    if os.environ.get("SLIMOPS_CPU_ISA"):
        pytest.skip("already running under SLIMOPS_CPU_ISA")
    skip_if_default_isa(isa)
    here = pathlib.Path(__file__).resolve().parent
    env = dict(os.environ, SLIMOPS_CPU_ISA=isa)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(here / __file__),
                        str(here / "test_mxgemm_ops.py"), "-k", "requested_isa or every_code or edge_scales or layouts"],
                       cwd=here.parents[1], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout.splitlines()[-1], r.stdout[-500:]
