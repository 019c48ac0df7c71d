// Bits of floats, shared by every family's element math (host and device, NVRTC-clean):
// fp32 <-> its bits, a bit cast for scalars and GCC vectors, bf16 / fp16 <-> fp32 (round to
// nearest even, NaN kept quiet, subnormals kept, fp16 overflow to Inf), and the lowbias32
// hash. Each family's header includes it and calls these as slimops::<name>.
#pragma once

#include "stdint_rtc.h"  // <stdint.h>, or under NVRTC (no C library headers) the typedefs
#if !defined(__CUDACC_RTC__)  // NVRTC: memcpy is a built-in
#include <string.h>
#endif

#if defined(__CUDACC__)
#define SLIMOPS_HD __host__ __device__ __forceinline__
#else
#define SLIMOPS_HD static inline __attribute__((always_inline))
#endif

namespace slimops {

SLIMOPS_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

SLIMOPS_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

// Reinterpret the bits of a scalar or of a vector (GCC vector extensions) as another type.
template <class To, class From>
SLIMOPS_HD To bitcast(const From& x) {
  static_assert(sizeof(To) == sizeof(From), "bitcast between types of different sizes");
  To t;
  memcpy(&t, &x, sizeof(To));
  return t;
}

// The 'lowbias32' integer hash (C. Wellons): the MX family's stochastic rounding and the
// row codec's noise, rand = mix32(index ^ mix32(seed)).
SLIMOPS_HD uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

SLIMOPS_HD float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

SLIMOPS_HD float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  float mag = e == 0 ? (float)m * 0x1p-24f
            : e == 31 ? bits_f32(m ? 0x7FC00000u : 0x7F800000u)
                      : bits_f32(((e + 112) << 23) | (m << 13));
  return bits_f32(f32_bits(mag) | sign);
}

// fp32 -> bf16 bits, round to nearest even (NaN kept quiet).
SLIMOPS_HD uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x40u;
  return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);  // a select: vectorises
}

// fp32 -> fp16 bits, round to nearest even, overflow to Inf, subnormals kept.
SLIMOPS_HD uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // >= 65520 rounds to Inf
  int exp = (int)(a >> 23) - 127;
  uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;
  if (exp < -14) {  // fp16 subnormal or zero: round onto the 2^-24 grid
    if (exp < -25) return (uint16_t)sign;
    int shift = -exp - 1;
    uint32_t q = (sig + (1u << (shift - 1)) - 1u + ((sig >> shift) & 1u)) >> shift;
    return (uint16_t)(sign | q);  // q == 0x400 is the smallest normal
  }
  uint32_t q = (sig + 0xFFFu + ((sig >> 13) & 1u)) >> 13;  // 11 bits, may carry to 0x800
  return (uint16_t)(sign | ((((uint32_t)(exp + 14)) << 10) + q));
}

}  // namespace slimops
