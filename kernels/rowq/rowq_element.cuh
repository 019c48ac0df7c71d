// Element math of the per-row integer codec (AdaQP), shared by the C++ CPU and CUDA kernels.
// Plain functions on scalars (the hash from kernels/common/float_bits.cuh). Matches python/slimops/rowq/reference.py bit for bit:
//   min, max over the row (NaN if any element is NaN, as torch.amin / amax; a zero extreme is +0),
//   every NaN written (params, decoded values) the canonical quiet NaN 0x7FC00000,
//   scale = (max - min) / (2^bits - 1), inv = scale > 0 ? 1 / scale : 0,
//   q = clamp(floor((x - min) * inv + u), 0, 2^bits - 1), u = (rand >> 8) * 2^-24 or 0.5; q = 0 where that is
//   NaN (rows holding NaN or Inf),
//   rand = mix32((row * L + j) ^ mix32(seed)) (uint32 wrap), the MX family's hash.
// Every fp32 operation is rounded on its own (no FMA contraction): __f*_rn on the device,
// -ffp-contract=off on the host.
#pragma once
#include <stdint.h>

#include "../common/float_bits.cuh"  // mix32, bits_f32

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

// Running min / max that keep a NaN once seen (fminf / fmaxf and a plain a < b drop it).
ROWQ_HD float nan_min(float a, float b) { return (b != b || b < a) ? b : a; }
ROWQ_HD float nan_max(float a, float b) { return (b != b || b > a) ? b : a; }

// The canonical quiet NaN for any NaN (a NaN's payload and sign depend on the hardware that made it).
ROWQ_HD float canonical(float v) { return v != v ? bits_f32(0x7FC00000u) : v; }

// (min, scale, inv) of a row from its min and max.
struct RowParams {
  float mn, scale, inv;
};

ROWQ_HD RowParams row_params(float mn, float mx, int bits) {
  RowParams p;
  mn = add_rn(mn, 0.0f);  // -0 -> +0: which signed zero a min or max finds depends on the order visited
  mx = add_rn(mx, 0.0f);
  p.mn = canonical(mn);
  p.scale = canonical(div_rn(sub_rn(mx, mn), (float)((1 << bits) - 1)));
  p.inv = p.scale > 0.0f ? div_rn(1.0f, p.scale) : 0.0f;
  return p;
}

// The code of one element; key = mix32(seed), index = row * L + j (wrapping).
ROWQ_HD uint32_t encode(float x, RowParams p, int bits, bool stochastic, uint32_t key, uint32_t index) {
  const float t = mul_rn(sub_rn(x, p.mn), p.inv);
  const float u = stochastic ? (float)(mix32(index ^ key) >> 8) * (1.0f / 16777216.0f) : 0.5f;
  const float q = floorf(add_rn(t, u));
  const float top = (float)((1 << bits) - 1);
  return q >= 0.0f ? (uint32_t)(q < top ? q : top) : 0u;  // NaN fails q >= 0: code 0
}

ROWQ_HD float decode(uint32_t q, float mn, float scale) {
  return canonical(add_rn(mn, mul_rn((float)q, scale)));
}

}  // namespace rowq
}  // namespace slimops
