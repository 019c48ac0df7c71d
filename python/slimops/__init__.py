"""slimops: custom-kernel performance toolkit for PyTorch.

``import slimops`` registers the ``torch.ops.slimops`` ops and their kernels,
one family per subpackage (``slimops.mx``, ...); it never initialises CUDA and
works without the native modules (the ops then run their pure-PyTorch
reference). ``slimops.info()`` says what is built and which backend each
family's ops run.
"""

from __future__ import annotations

from . import _library  # noqa: F401  (the torch.library object, first)
from ._backend import BACKENDS, current_backend, set_backend, use_backend
from ._info import info

# The kernel families: importing one registers its ops and kernels (one line per family).
from . import mx  # noqa: E402
from . import slicescale  # noqa: E402  (mx_convert; builds on mx)
from . import gat  # noqa: E402
from . import rowq  # noqa: E402
from . import distributed  # noqa: E402  (halo exchange; builds on mx, gat and rowq)
from . import mxgemm  # noqa: E402  (mx_linear; builds on mx)

__version__ = "0.1.0"
__all__ = ["BACKENDS", "current_backend", "distributed", "gat", "info", "mx", "mxgemm", "rowq", "set_backend",
           "slicescale", "use_backend"]
