"""compute-sanitizer driver: the Slice-and-Scale CUDA kernel (``mx_convert``) on the whole grid of
``slimops.slicescale.check`` (every pair and rounding, partial blocks, axis 0, an empty tensor)."""

from memcheck_common import main

from slimops.slicescale.check import cases

if __name__ == "__main__":
    raise SystemExit(main("slicescale", cases()))
