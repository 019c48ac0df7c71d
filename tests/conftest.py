"""Fixtures shared by every family's tests; helpers live in :mod:`slimops.testing`."""

from __future__ import annotations

import os

import torch

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
    slimops._backend._current.clear()
    slimops._backend._default.clear()


def pytest_report_header(config):
    return f"slimops info: {slimops.info()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})"
