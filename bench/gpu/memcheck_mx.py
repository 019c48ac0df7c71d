"""compute-sanitizer driver: the MX CUDA kernels (CUDA C++, and the same through NVRTC where CuPy is there) on
small cases of ``slimops.mx.check``: every format and dtype at block 32 with the edge values and random codes
(partial last blocks), blocks along axis 0 and a transposed view at blocks of 32, empty tensors, the ``out=``
variants."""

from memcheck_common import main

from slimops.mx.check import cases

SMALL = ("bs32 edges", "bs32 random codes", "axis 0", "transposed view", "empty", "out=")

if __name__ == "__main__":
    raise SystemExit(main("mx", [c for c in cases() if any(k in c.label for k in SMALL)], ("native", "nvrtc")))
