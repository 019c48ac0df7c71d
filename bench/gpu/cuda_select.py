"""pytest plugin for the GPU script (``PYTHONPATH=bench/gpu pytest -p cuda_select tests``): keep the tests
that touch CUDA, deselect the rest.

A test touches CUDA when its node id names it (the device parameters of
``slimops.testing``: ``cuda-native``, ``cuda-triton``, ``cuda-nvrtc``, ``device=cuda``;
tests named ``test_cuda_*``) or when its module runs on the module-level
``DEVICE``, which is ``"cuda"`` on a GPU machine (``tests/mx/test_triton_mx.py``,
``tests/gat/test_gat_triton.py``). ``tests/test_cuda_build.py`` is left out: it
builds ``slimops._C_cuda`` again from scratch in a temporary folder (minutes),
and step 1 of the script has just built it. On a machine without a GPU the
selection still collects the ``cuda`` parameters (each then skips, saying why).
"""

from __future__ import annotations

LEFT_OUT = {"test_cuda_build.py": "rebuilds slimops._C_cuda from scratch; the script's build step built it"}


def touches_cuda(item) -> bool:
    if item.path.name in LEFT_OUT:
        return False
    if "cuda" in item.nodeid.lower():
        return True
    return getattr(getattr(item, "module", None), "DEVICE", None) == "cuda"


def pytest_collection_modifyitems(config, items):
    keep = [i for i in items if touches_cuda(i)]
    drop = [i for i in items if not touches_cuda(i)]
    if drop:
        config.hook.pytest_deselected(items=drop)
    config._cuda_select = (len(keep), len(items), sorted({i.path.name for i in drop if i.path.name in LEFT_OUT}))
    items[:] = keep


def pytest_report_collectionfinish(config, items):
    kept, total, left_out = getattr(config, "_cuda_select", (0, 0, []))
    why = "; ".join(f"{name}: {LEFT_OUT[name]}" for name in left_out)
    return f"cuda_select: {kept} of {total} tests touch CUDA" + (f" (left out {why})" if why else "")
