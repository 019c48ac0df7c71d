"""compute-sanitizer driver: the row codec's CUDA kernels (``rowq_quantize`` / ``rowq_dequantize``) on the fp32
and bf16 cases of ``slimops.rowq.check`` (2/4/8 bits, both roundings, 1 x 1 to 300 x 129, empty rows and
columns, constant / Inf / NaN rows)."""

import torch
from memcheck_common import main

from slimops.rowq.check import cases

if __name__ == "__main__":
    raise SystemExit(main("rowq", [c for c in cases() if c.dtype != torch.float16]))
