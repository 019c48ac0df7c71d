// Host launchers of the per-row integer codec's CUDA kernels (kernels/rowq/rowq_kernels.cu): device
// pointers, sizes (checked before: csrc/rowq/rowq_args.h) and a stream. Each returns the launch
// status (cudaGetLastError after the launch).
#pragma once
#include <stdint.h>

#include <cuda_runtime_api.h>

namespace slimops {
namespace rowq {

// x (rows, length) fp32 -> data (rows, ceil(length * bits / 8)) codes, params (rows, 2): min, scale.
cudaError_t rowq_quantize_cuda(const float* x, uint8_t* data, float* params, int64_t rows, int64_t length, int bits,
                               bool stochastic, uint32_t seed, cudaStream_t stream);
// out (rows, length) fp32 = min + code * scale per row.
cudaError_t rowq_dequantize_cuda(const uint8_t* data, const float* params, float* out, int64_t rows, int64_t length,
                                 int bits, cudaStream_t stream);

}  // namespace rowq
}  // namespace slimops
