#!/usr/bin/env bash
# The GATv2 checks that need a CUDA GPU, as one command (for the device tool, from the repository root):
#   1. builds slimops._C_cuda with the GAT and GATv2 kernels only (nvcc, $SLIMOPS_CUDA_ARCHS, default 90a;
#      the other families' CUDA kernels take minutes to compile and are not needed here);
#   2. runs the CUDA C++ and Triton tests of GATv2 and GAT on the GPU (tests/gat/test_gatv2_cuda.py,
#      test_gatv2_triton.py, test_gat_triton.py);
#   3. times one layer forward + backward, FusedGATv2Conv (Triton = auto, and CUDA C++) vs PyG GATv2Conv,
#      at N = 100k / degree 64 and 20k / 32 (slimops bench gatv2 --device cuda), peak memory and saved bytes.
# Logs and reports go under $OUT (default results/gpu). Uses the machine's python3 (torch, triton, PyG).
set -u
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
ARCH=${SLIMOPS_CUDA_ARCHS:-90a}
nvidia-smi -L
python3 -c "import torch, triton, torch_geometric as g; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'triton', triton.__version__, 'pyg', g.__version__, torch.cuda.get_device_name())"
MOD=$(mktemp -d)/module_gat_cuda.cpp
cat > "$MOD" <<'CPP'
#include <pybind11/pybind11.h>
namespace slimops { void bind_gat_cuda(pybind11::module_& m); void bind_gatv2_cuda(pybind11::module_& m); }
PYBIND11_MODULE(_C_cuda, m) { slimops::bind_gat_cuda(m); slimops::bind_gatv2_cuda(m); }
CPP
SO=python/slimops/_C_cuda$(python3 -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
t0=$SECONDS
nvcc -O3 -std=c++17 -arch=sm_$ARCH -ftz=false -prec-div=true -prec-sqrt=true -shared -Xcompiler -fPIC -I. \
  $(python3 -m pybind11 --includes) kernels/gat/gat_kernels.cu kernels/gat/gatv2_kernels.cu csrc/gat/bind_gat_cuda.cpp \
  csrc/gat/bind_gatv2_cuda.cpp "$MOD" -o "$SO" 2>&1 | tee "$OUT/build.log" || exit 3
echo "built $SO in $((SECONDS - t0)) s"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/gat/test_gatv2_cuda.py tests/gat/test_gatv2_triton.py \
  tests/gat/test_gat_triton.py 2>&1 | tee "$OUT/tests.log" | tail -15
timeout 300 python3 -m slimops bench gatv2 --device cuda --configs 100000:64,20000:32 --modes full \
  --out "$OUT" 2>&1 | tee "$OUT/bench.log" | tail -25
