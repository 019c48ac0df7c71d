// CUDA kernels of the per-row integer codec (AdaQP): one warp per row for the min/max, then one thread per
// output byte packs its codes. Element math: rowq_element.cuh (the CPU kernels compile the same header).
// Linked into slimops._C_cuda (csrc/rowq/bind_rowq_cuda.cpp), compiled with --fmad=false so that
// the element math is not FMA-contracted (bit-exact with the reference).
// Compile check from the repository root: nvcc -std=c++17 -arch=sm_90a -c kernels/rowq/rowq_kernels.cu -I . -o /tmp/rowq.o
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels/rowq/rowq_cuda.h"
#include "kernels/rowq/rowq_element.cuh"

namespace slimops {
namespace rowq {

namespace {

// Warp reductions that keep NaN (fminf / fmaxf drop it, and the reference's amin / amax keep it).
__device__ __forceinline__ float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = rowq::nan_min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = rowq::nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp quantizes row r: min / max over its lanes, then each lane packs whole bytes.
__device__ void quantize_row(const float* __restrict__ x, uint8_t* __restrict__ data, float* __restrict__ params,
                             int64_t r, int64_t length, int64_t packed, int bits, bool stochastic, uint32_t key,
                             int lane) {
  const float* xr = x + r * length;
  float mn = INFINITY, mx = -INFINITY;
  for (int64_t j = lane; j < length; j += 32) {
    mn = rowq::nan_min(mn, xr[j]);
    mx = rowq::nan_max(mx, xr[j]);
  }
  mn = warp_min(mn);
  mx = warp_max(mx);
  if (length == 0) mn = mx = 0.0f;
  const rowq::RowParams p = rowq::row_params(mn, mx, bits);
  if (lane == 0) {
    params[2 * r] = p.mn;
    params[2 * r + 1] = p.scale;
  }
  const int per = 8 / bits;
  const uint32_t base = (uint32_t)((uint64_t)r * (uint64_t)length);
  for (int64_t b = lane; b < packed; b += 32) {
    uint32_t byte = 0;
    for (int k = 0; k < per; ++k) {
      const int64_t j = b * per + k;
      if (j < length) byte |= rowq::encode(xr[j], p, bits, stochastic, key, base + (uint32_t)j) << (k * bits);
    }
    data[r * packed + b] = (uint8_t)byte;
  }
}

// Grids are capped (kMaxBlocks) and every kernel strides over its work, so any size launches.
constexpr int64_t kMaxBlocks = int64_t(1) << 30;

inline unsigned capped_blocks(int64_t work, int64_t per_block) {
  const int64_t b = (work + per_block - 1) / per_block;
  return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

// blockDim.x = 32 * warps; each warp owns rows warp, warp + all warps, ...
__global__ void rowq_quantize_kernel(const float* __restrict__ x, uint8_t* __restrict__ data,
                                     float* __restrict__ params, int64_t rows, int64_t length, int64_t packed,
                                     int bits, bool stochastic, uint32_t key) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t r = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps)
    quantize_row(x, data, params, r, length, packed, bits, stochastic, key, lane);
}

__global__ void rowq_dequantize_kernel(const uint8_t* __restrict__ data, const float* __restrict__ params,
                                       float* __restrict__ out, int64_t rows, int64_t length, int64_t packed,
                                       int bits) {
  const int per = 8 / bits;
  const int64_t n = rows * length, stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t r = i / length, j = i % length;
    const uint32_t q = (data[r * packed + j / per] >> ((j % per) * bits)) & ((1u << bits) - 1);
    out[i] = rowq::decode(q, params[2 * r], params[2 * r + 1]);
  }
}

}  // namespace

cudaError_t rowq_quantize_cuda(const float* x, uint8_t* data, float* params, int64_t rows, int64_t length, int bits,
                               bool stochastic, uint32_t seed, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const int warps = 8;
  const int64_t packed = (length * bits + 7) / 8;
  rowq_quantize_kernel<<<capped_blocks(rows, warps), 32 * warps, 0, stream>>>(x, data, params, rows, length, packed, bits, stochastic,
                                                         slimops::mix32(seed));
  return cudaGetLastError();
}

cudaError_t rowq_dequantize_cuda(const uint8_t* data, const float* params, float* out, int64_t rows, int64_t length,
                                 int bits, cudaStream_t stream) {
  const int64_t n = rows * length;
  if (n == 0) return cudaSuccess;
  const int64_t packed = (length * bits + 7) / 8;
  rowq_dequantize_kernel<<<capped_blocks(n, 256), 256, 0, stream>>>(data, params, out, rows, length, packed, bits);
  return cudaGetLastError();
}

}  // namespace rowq
}  // namespace slimops
