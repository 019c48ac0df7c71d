"""compute-sanitizer driver: the MX CUDA kernels (CUDA C++, and the same through NVRTC where CuPy is there) on
the small cases of ``slimops.mx.check``: every format, block size and dtype with the edge values, random codes,
blocks along axis 0, a transposed view, empty tensors, the ``out=`` variants."""

from memcheck_common import main

from slimops.mx.check import cases

SMALL = ("edges", "random codes", "axis 0", "transposed view", "empty", "out=")

if __name__ == "__main__":
    raise SystemExit(main("mx", [c for c in cases() if any(k in c.label for k in SMALL)], ("native", "nvrtc")))
