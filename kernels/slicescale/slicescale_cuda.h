// Host launcher of the Slice-and-Scale CUDA kernel (kernels/slicescale/slicescale_kernels.cu).
// Arguments: kernels/slicescale/slicescale_params.h (num_threads unused), device pointers, a
// stream; csrc/slicescale/bind_slicescale_cuda.cpp checks every argument before calling it.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/slicescale/slicescale_params.h"

namespace slimops {
namespace slicescale_cuda {
// Enqueue mx_convert on `stream`; returns the launch status. Nothing is launched when empty.
cudaError_t convert(const ConvertArgs& a, cudaStream_t stream);
}  // namespace slicescale_cuda
}  // namespace slimops
