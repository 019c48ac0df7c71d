// Element math of the per-row integer codec (AdaQP), shared by the C++ CPU and CUDA kernels.
// Plain functions on scalars (the hash from kernels/common/float_bits.cuh). Matches python/slimops/distributed/reference.py bit for bit:
//   scale = (max - min) / (2^bits - 1), inv = scale > 0 ? 1 / scale : 0,
//   q = clamp(floor((x - min) * inv + u), 0, 2^bits - 1), u = (rand >> 8) * 2^-24 or 0.5,
//   rand = mix32((row * L + j) ^ mix32(seed)) (uint32 wrap), the MX family's hash.
// Every fp32 operation is rounded on its own (no FMA contraction): __f*_rn on the device,
// -ffp-contract=off on the host.
#pragma once
#include <stdint.h>

#include "../common/float_bits.cuh"  // mix32

#ifdef __CUDACC__
#define ROWQ_HD __host__ __device__ __forceinline__
#else
#define ROWQ_HD inline
#endif

namespace slimops {
namespace rowq {

ROWQ_HD float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

ROWQ_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

ROWQ_HD float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

ROWQ_HD float div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// (min, scale, inv) of a row from its min and max.
struct RowParams {
  float mn, scale, inv;
};

ROWQ_HD RowParams row_params(float mn, float mx, int bits) {
  RowParams p;
  p.mn = mn;
  p.scale = div_rn(sub_rn(mx, mn), (float)((1 << bits) - 1));
  p.inv = p.scale > 0.0f ? div_rn(1.0f, p.scale) : 0.0f;
  return p;
}

// The code of one element; key = mix32(seed), index = row * L + j (wrapping).
ROWQ_HD uint32_t encode(float x, RowParams p, int bits, bool stochastic, uint32_t key, uint32_t index) {
  const float t = mul_rn(sub_rn(x, p.mn), p.inv);
  const float u = stochastic ? (float)(mix32(index ^ key) >> 8) * (1.0f / 16777216.0f) : 0.5f;
  float q = floorf(add_rn(t, u));
  const float top = (float)((1 << bits) - 1);
  q = q < 0.0f ? 0.0f : (q > top ? top : q);
  return (uint32_t)q;
}

ROWQ_HD float decode(uint32_t q, float mn, float scale) {
  return add_rn(mn, mul_rn((float)q, scale));
}

}  // namespace rowq
}  // namespace slimops
