#!/usr/bin/env bash
# The Slice-and-Scale (and mx_quantize out=) checks that need a GPU, as one bounded script: build the
# CUDA module for the GPU at hand (sm_90a by default), then the CUDA tests of tests/slicescale and
# tests/mx/test_mx_quantize_out.py (CUDA C++ and Triton, bit-exact against the CPU reference, out=,
# the conversion report's counts). Writes its log to ${OUT:-.}/slicescale_gpu.log.
# Usage (repository root, a machine with CUDA, torch, nvcc): bash bench/slicescale/gpu_check.sh
set -uo pipefail
LOG=${OUT:-.}/slicescale_gpu.log
PY=${PYTHON:-python3}
{
  echo "== $(date -u) $(git log -1 --oneline 2>/dev/null) on $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
  export SLIMOPS_CUDA_ARCHS=${SLIMOPS_CUDA_ARCHS:-90a} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
  timeout 420 $PY -m pip install -q --no-build-isolation --no-deps -e . || { echo "BUILD FAILED"; exit 1; }
  $PY -c "import slimops; print(slimops.info())" | head -c 2000; echo
  timeout 300 $PY -m pytest -q -p no:cacheprovider tests/slicescale/test_convert_backends.py \
      tests/mx/test_mx_quantize_out.py -k "cuda" -x
  echo "== pytest exit $?"
} 2>&1 | tee "$LOG"
