// GAT element math shared by the C++ CPU kernels (csrc/gat/) and the CUDA kernels
// (kernels/gat/): the dropout hash, leaky ReLU, and the bf16 / fp16 conversions.
// The pure-PyTorch reference (python/slimops/gat/reference.py) and the Triton
// kernels follow the same integer steps, so every backend drops the same edges.
#pragma once

#include <stdint.h>
#include <string.h>

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

GAT_HD float leaky(float z, float slope) { return z > 0.0f ? z : z * slope; }
GAT_HD float leaky_grad(float z, float slope) { return z > 0.0f ? 1.0f : slope; }

// ---------------------------------------------------------------------------- conversions

GAT_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

GAT_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

GAT_HD float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

GAT_HD uint16_t f32_to_bf16(float f) {  // round to nearest even, NaN kept quiet
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

GAT_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h >> 15) << 31;
  const uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  float mag;
  if (e == 0) mag = (float)m * (1.0f / 16777216.0f);
  else if (e == 31) mag = bits_f32(m ? 0x7FC00000u : 0x7F800000u);
  else mag = bits_f32(((e + 112) << 23) | (m << 13));
  return bits_f32(f32_bits(mag) | sign);
}

GAT_HD uint16_t f32_to_f16(float f) {  // round to nearest even, overflow to Inf, subnormals kept
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
  const int exp = (int)(a >> 23) - 127;
  const uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;
  if (exp < -14) {
    if (exp < -25) return (uint16_t)sign;
    const int shift = -exp - 1;  // 14..24
    const uint32_t q = (sig + (1u << (shift - 1)) - 1u + ((sig >> shift) & 1u)) >> shift;
    return (uint16_t)(sign | q);
  }
  const uint32_t r = (a + 0xFFFu + ((a >> 13) & 1u)) >> 13;  // rounds the mantissa, carries into the exponent
  return (uint16_t)(sign | (r - (112u << 10)));
}

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
