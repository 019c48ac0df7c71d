"""slimops: custom-kernel performance toolkit for PyTorch.

``import slimops`` registers the ``torch.ops.slimops`` ops and their kernels; it
never initialises CUDA and works without the native modules (the ops then run
their pure-PyTorch reference). ``slimops.info()`` says what is built and active.
"""

from __future__ import annotations

from . import _ops  # noqa: F401  (op schemas, first)
from . import backends  # noqa: F401  (kernel registrations)
from . import gat, mx
from ._backend import BACKENDS, current_backend, set_backend, use_backend
from ._info import info

__version__ = "0.1.0"
__all__ = ["BACKENDS", "current_backend", "info", "mx", "set_backend", "use_backend"]
