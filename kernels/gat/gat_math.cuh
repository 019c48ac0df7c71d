// GAT element math shared by the C++ CPU kernels (csrc/gat/) and the CUDA kernels
// (kernels/gat/): the dropout hash, leaky ReLU, and loads / stores of fp32, bf16 and fp16.
// The pure-PyTorch reference (python/slimops/gat/reference.py) and the Triton
// kernels follow the same integer steps, so every backend drops the same edges.
#pragma once

#include <stdint.h>

#include "../common/float_bits.cuh"  // f32_bits, bits_f32 and the bf16 / fp16 conversions

#if defined(__CUDACC__)
#define GAT_HD __host__ __device__ __forceinline__
#else
#define GAT_HD static inline __attribute__((always_inline))
#endif

namespace slimops {
namespace gat {

enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

constexpr uint32_t kGolden = 0x9E3779B9u;

// murmur3's 32-bit finaliser.
GAT_HD uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

// Per-call key: fmix32((seed mod 2^32) ^ golden).
GAT_HD uint32_t seed_key(int64_t seed) { return fmix32((uint32_t)(uint64_t)seed ^ kGolden); }

// Per-edge part of the hash of counter c = offset + edge position.
GAT_HD uint32_t edge_key(uint32_t key, uint64_t c) {
  return fmix32(fmix32(key ^ (uint32_t)c) ^ (uint32_t)(c >> 32));
}

// Dropout factor of (edge, head): 1/(1-p) when kept (u >= p), else 0; u = (hash >> 8) * 2^-24.
GAT_HD float dropout_weight(uint32_t ekey, int head, float p, float inv_keep) {
  const uint32_t v = fmix32(ekey ^ (uint32_t)head);
  const float u = (float)(v >> 8) * (1.0f / 16777216.0f);
  return u >= p ? inv_keep : 0.0f;
}

// The product is rounded on its own (never fused with a later subtraction into an FMA): the backward
// recomputes alpha = exp(leaky(z) - lse), and near the float maximum half an ulp of z * slope is enough
// to turn exp into 0 or Inf. (The C++ CPU kernels subtract lse in a separate loop for the same reason.)
// On the host both are selects by a bit mask, not branches: the sign of z is random, and a branch per
// edge and head mispredicted half the time (a third of the CPU kernels' time on Cora).
GAT_HD float leaky(float z, float slope) {
#ifdef __CUDA_ARCH__
  return z > 0.0f ? z : __fmul_rn(z, slope);
#else
  const uint32_t keep = 0u - (uint32_t)(z > 0.0f);
  return bits_f32((f32_bits(z) & keep) | (f32_bits(z * slope) & ~keep));
#endif
}
GAT_HD float leaky_grad(float z, float slope) {
#ifdef __CUDA_ARCH__
  return z > 0.0f ? 1.0f : slope;
#else
  const uint32_t keep = 0u - (uint32_t)(z > 0.0f);
  return bits_f32((0x3F800000u & keep) | (f32_bits(slope) & ~keep));
#endif
}

// ---------------------------------------------------------------------------- load / store
// The conversions are kernels/common/float_bits.cuh's (round to nearest even, NaN kept quiet).

template <int DT>
GAT_HD float load(const void* p, int64_t i) {
  if (DT == kF32) return ((const float*)p)[i];
  if (DT == kBF16) return bf16_to_f32(((const uint16_t*)p)[i]);
  return f16_to_f32(((const uint16_t*)p)[i]);
}

template <int DT>
GAT_HD void store(void* p, int64_t i, float v) {
  if (DT == kF32) ((float*)p)[i] = v;
  else if (DT == kBF16) ((uint16_t*)p)[i] = f32_to_bf16(v);
  else ((uint16_t*)p)[i] = f32_to_f16(v);
}

}  // namespace gat
}  // namespace slimops
