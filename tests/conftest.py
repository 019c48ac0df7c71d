"""Fixtures shared by every family's tests; helpers live in :mod:`slimops.testing`."""

from __future__ import annotations

import os
from pathlib import Path

# torch.compile's on-disk cache, per checkout: the default (/tmp/torchinductor_$USER) is shared by every
# checkout on the machine, and a graph cached by one whose op schemas differ is replayed by another.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "inductor"))

import torch  # noqa: E402

# Without a GPU, Triton kernels run in its interpreter on CPU tensors; this must be
# set before triton is first imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import slimops  # noqa: E402


@pytest.fixture
def backend_reset():
    """Clears any backend setting a test left behind (set_backend, or a use_backend block that raised)."""
    yield
    slimops._backend._selected.set(None)
    slimops._backend._default.clear()


def pytest_report_header(config):
    return f"slimops info: {slimops.info()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})"
