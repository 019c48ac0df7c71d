// Host launchers of the MX CUDA kernels (kernels/mx/mx_kernels.cu), on the
// canonical layout: a contiguous (rows, L) tensor whose last axis is blocked, packed
// data (rows, ceil(L * bits / 8)) and E8M0 scales (rows, ceil(L / block_size)).
// The same arguments as the CPU kernels (mx_params.h; num_threads is not used),
// plus a stream. Pointers are device pointers; csrc/mx/bind_mx_cuda.cpp checks every
// argument (csrc/mx/mx_args.h) before calling these.
#pragma once
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "mx_params.h"

namespace slimops {
namespace cuda {

using slimops::DequantizeArgs;
using slimops::FakeQuantizeArgs;
using slimops::QuantizeArgs;
using slimops::kBF16;
using slimops::kF16;
using slimops::kF32;

// Enqueue the kernel on `stream` (of the current device) and return the launch
// status (cudaGetLastError after the launch): errors of the kernel's execution show
// up later, on the stream, as usual. Nothing is launched for an empty tensor.
// Arguments are assumed valid (see csrc/bindings_cuda.cpp).
cudaError_t quantize(const QuantizeArgs& a, cudaStream_t stream);
cudaError_t dequantize(const DequantizeArgs& a, cudaStream_t stream);
cudaError_t fake_quantize(const FakeQuantizeArgs& a, cudaStream_t stream);

}  // namespace cuda
}  // namespace slimops
