// Arguments and host launchers of the MX CUDA kernels (kernels/mx_kernels.cu), on the
// canonical layout: a contiguous (rows, L) tensor whose last axis is blocked, packed
// data (rows, ceil(L * bits / 8)) and E8M0 scales (rows, ceil(L / block_size)).
// The same arguments as the CPU kernels (csrc/mx_cpu.h), with a stream instead of a
// thread count. Pointers are device pointers; csrc/bindings_cuda.cpp checks every
// argument before calling these.
#pragma once
#include <stdint.h>

#include <cuda_runtime_api.h>

namespace slimops {
namespace cuda {

enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

struct QuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  uint8_t* data; uint8_t* scales;
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed;
};

struct DequantizeArgs {
  const uint8_t* data; const uint8_t* scales; int64_t rows, length;
  void* out; int dtype; int fmt, block_size;
};

struct FakeQuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  void* out;  // same dtype as x
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed;
};

// Enqueue the kernel on `stream` (of the current device) and return the launch
// status (cudaGetLastError after the launch): errors of the kernel's execution show
// up later, on the stream, as usual. Nothing is launched for an empty tensor.
// Arguments are assumed valid (see csrc/bindings_cuda.cpp).
cudaError_t quantize(const QuantizeArgs& a, cudaStream_t stream);
cudaError_t dequantize(const DequantizeArgs& a, cudaStream_t stream);
cudaError_t fake_quantize(const FakeQuantizeArgs& a, cudaStream_t stream);

}  // namespace cuda
}  // namespace slimops
