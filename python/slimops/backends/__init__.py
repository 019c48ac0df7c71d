"""Kernel registrations. Importing this package registers every backend that can load."""

from . import default  # noqa: F401  (the reference, "default" dispatch key)
from . import cpu  # noqa: F401  (C++ kernels, "cpu")
from . import cuda  # noqa: F401  (Triton and CUDA C++ kernels, "cuda")
