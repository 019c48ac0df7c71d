// The GAT CPU kernels' 8-lane float vectors and the small loops on them (csrc/gat/gat_cpu.cpp): loads and
// stores in any of the kernels' dtypes, exp, log, the leaky ReLU and its gradient, dot products of one head and
// of 8 heads at once, and the row buffers' padded exp and sum. Included by gat_cpu.cpp alone, once per
// instruction set (SLIMOPS_ISA names the namespace, as there).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/gat/gat_math.cuh"

namespace slimops {
namespace gat {
namespace SLIMOPS_ISA {
namespace {

// 8-lane float vectors (GCC vector extensions: one AVX2 register, two SSE ones, half an AVX-512 one), for the
// loops GCC does not vectorise well by itself on AVX2 (see exp8 here and scores_t in gat_cpu.cpp).
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors are passed between inlined functions only
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));

template <int DT>
inline f32x8 load8(const void* p, int64_t i) {
  f32x8 v;
  if (DT == kF32) {
    memcpy(&v, (const float*)p + i, sizeof(v));
  } else {
    for (int l = 0; l < 8; ++l) v[l] = load<DT>(p, i + l);
  }
  return v;
}

template <int DT>
inline void store8(void* p, int64_t i, f32x8 v) {
  if (DT == kF32) memcpy((float*)p + i, &v, sizeof(v));
  else
    for (int l = 0; l < 8; ++l) store<DT>(p, i + l, v[l]);
}

typedef int32_t i32x8 __attribute__((vector_size(32)));

inline float hsum8(f32x8 v) {
  const f32x4 q = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// exp(x) on 8 lanes (Cephes' expf: Cody-Waite reduction by n ln 2, a degree-6 polynomial, 2^n applied in two
// steps so that subnormal results round once; within 2 ulp of expf). NaN stays NaN, +inf gives inf, -inf gives
// 0. Written on vectors with selects: the scalar form with clamps and a NaN test compiled to branches and
// scalar code on AVX2 (about 20 cycles an element; a third of the forward's time on Cora). n = round(x log2 e)
// by the 1.5 * 2^23 shifter (round to nearest even, as rintf, for |x log2 e| <= 2^22).
inline f32x8 exp8(f32x8 x) {
  const i32x8 nan = x != x;
  f32x8 xc = x < -110.0f ? f32x8{} - 110.0f : x;
  xc = xc > 89.0f ? f32x8{} + 89.0f : xc;
  xc = nan ? f32x8{} : xc;
  const f32x8 n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  f32x8 r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  f32x8 q = f32x8{} + 1.9875691500E-4f;
  q = q * r + 1.3981999507E-3f;
  q = q * r + 8.3334519073E-3f;
  q = q * r + 4.1665795894E-2f;
  q = q * r + 1.6666665459E-1f;
  q = q * r + 5.0000001201E-1f;
  const f32x8 e = q * r * r + r + 1.0f;
  const i32x8 ni = __builtin_convertvector(n, i32x8), n1 = ni >> 1, n2 = ni - n1;
  f32x8 s1, s2;
  const i32x8 b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
  memcpy(&s1, &b1, sizeof(s1));
  memcpy(&s2, &b2, sizeof(s2));
  const f32x8 res = e * s1 * s2;
  return nan ? x : res;
}

// log(x) on 8 lanes for positive normal finite x (Cephes' logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), a
// degree-9 polynomial in m - 1, e ln 2 added in two parts; within 2 ulp of logf). Other lanes (0, subnormals,
// inf, NaN, negatives) are taken from logf itself. The softmax sums it is used on lie in [1, deg] or are NaN.
inline f32x8 log8(f32x8 x) {
  i32x8 bits;
  memcpy(&bits, &x, sizeof(bits));
  i32x8 e = ((bits >> 23) & 0xff) - 126;
  const i32x8 mb = (bits & 0x807fffff) | 0x3f000000;  // the mantissa as a float in [0.5, 1)
  f32x8 m;
  memcpy(&m, &mb, sizeof(m));
  const i32x8 small = m < 0.707106781186547524f;
  e += small;  // -1 where true
  m = (small ? m + m : m) - 1.0f;
  const f32x8 z = m * m;
  f32x8 y = f32x8{} + 7.0376836292E-2f;
  y = y * m - 1.1514610310E-1f;
  y = y * m + 1.1676998740E-1f;
  y = y * m - 1.2420140846E-1f;
  y = y * m + 1.4249322787E-1f;
  y = y * m - 1.6668057665E-1f;
  y = y * m + 2.0000714765E-1f;
  y = y * m - 2.4999993993E-1f;
  y = y * m + 3.3333331174E-1f;
  const f32x8 ef = __builtin_convertvector(e, f32x8);
  y = y * m * z + ef * -2.12194440e-4f - 0.5f * z;
  f32x8 r = (m + y) + ef * 0.693359375f;
  for (int l = 0; l < 8; ++l)
    if (!(x[l] >= 1.17549435e-38f && x[l] <= 3.40282347e38f)) r[l] = logf(x[l]);
  return r;
}

// leaky() and leaky_grad() on 8 lanes, by bit masks as theirs (the product rounded on its own: no FMA with a
// later subtraction).
inline f32x8 leaky8(f32x8 z, float slope) {
  const i32x8 keep = z > 0.0f;
  const f32x8 zs = z * slope;
  i32x8 a, b;
  memcpy(&a, &z, sizeof(a));
  memcpy(&b, &zs, sizeof(b));
  const i32x8 r = (a & keep) | (b & ~keep);
  f32x8 out;
  memcpy(&out, &r, sizeof(out));
  return out;
}
inline f32x8 leaky_grad8(f32x8 z, float slope) { return z > 0.0f ? f32x8{} + 1.0f : f32x8{} + slope; }

// sum_c a[c] * b[c] over one head's channels: 16 lane-wise partial sums (one vector FMA per 16 channels at
// any ISA width), then 8 more lanes when 8 or more channels remain (so that C = 8 is one vector product, not
// a serial chain), then a tree. (An ``omp simd reduction`` here summed its 16 lanes one by one, serially.)
template <int DT>
inline float dot(const float* a, const void* b, int64_t base, int64_t n) {
  float part[16] = {0.0f};
  int64_t c = 0;
  for (; c + 16 <= n; c += 16)
    for (int l = 0; l < 16; ++l) part[l] += a[c + l] * load<DT>(b, base + c + l);
  if (c + 8 <= n) {
    for (int l = 0; l < 8; ++l) part[l] += a[c + l] * load<DT>(b, base + c + l);
    c += 8;
  }
  float tail = 0.0f;
  for (; c < n; ++c) tail += a[c] * load<DT>(b, base + c);
  for (int l = 0; l < 8; ++l) part[l] += part[l + 8];  // fixed trip counts: each level is one vector add
  for (int l = 0; l < 4; ++l) part[l] += part[l + 4];
  for (int l = 0; l < 2; ++l) part[l] += part[l + 2];
  return (part[0] + part[1]) + tail;
}

// dot() for a channel count CT, a multiple of 8, known at compile time: the products of each 8 channels summed
// lane-wise, then hsum8 (at C = 8, dot()'s order).
template <int DT, int CT>
inline float dot_c(const float* a, const void* b, int64_t base) {
  f32x8 acc = load8<kF32>(a, 0) * load8<DT>(b, base);
  for (int64_t c = 8; c < CT; c += 8) acc += load8<kF32>(a, c) * load8<DT>(b, base + c);
  return hsum8(acc);
}

// x[0, n) = exp8(x) in whole 8-lane vectors (x holds room up to padded(n), the next multiple of 8; the extra
// lanes are scratch), so that a row of a few edges still runs one vector loop rather than a scalar remainder.
constexpr int64_t kLanes = 8;
inline int64_t padded(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }
inline void exp_block(float* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 8) store8<kF32>(x, b, exp8(load8<kF32>(x, b)));
}

// sum of x[0, n): 16 lane-wise partial sums, then a tree (deterministic for a given n).
inline float sum_lanes(const float* x, int64_t n) {
  float part[16] = {0.0f};
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    for (int l = 0; l < 16; ++l) part[l] += x[k + l];
  float tail = 0.0f;
  for (; k < n; ++k) tail += x[k];
  for (int l = 0; l < 8; ++l) part[l] += part[l + 8];
  for (int l = 0; l < 4; ++l) part[l] += part[l + 4];
  for (int l = 0; l < 2; ++l) part[l] += part[l + 2];
  return (part[0] + part[1]) + tail;
}

// Pairwise sums of adjacent lanes of a and b, as vhaddps: [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7].
inline f32x8 hadd8(f32x8 a, f32x8 b) {
  return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) + __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
}

// The dot products of 8 consecutive heads at once, CT channels each (a multiple of 8): lane h of the result is
// sum_c a[h * CT + c] * b[base + h * CT + c] (each head's products summed lane-wise, then a transposing tree of
// pairwise sums: 7 of them for the 8 heads, instead of a horizontal sum per head).
template <int DT, int CT>
inline f32x8 dots8(const float* a, const void* b, int64_t base) {
  f32x8 p[8];
  for (int h = 0; h < 8; ++h) {
    p[h] = load8<kF32>(a, h * CT) * load8<DT>(b, base + h * CT);
    for (int64_t c = 8; c < CT; c += 8) p[h] += load8<kF32>(a, h * CT + c) * load8<DT>(b, base + h * CT + c);
  }
  const f32x8 u0 = hadd8(hadd8(p[0], p[1]), hadd8(p[2], p[3])), u1 = hadd8(hadd8(p[4], p[5]), hadd8(p[6], p[7]));
  return __builtin_shufflevector(u0, u1, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(u0, u1, 4, 5, 6, 7, 12, 13, 14, 15);
}

// One head's dot product of C channels: dot_c when CT is a multiple of 8, else dot.
template <int DT, int CT>
inline float head_dot(const float* a, const void* b, int64_t base, int64_t C) {
  if (CT > 0 && CT % 8 == 0) return dot_c<DT, (CT > 0 ? CT : 8)>(a, b, base);
  return dot<DT>(a, b, base, C);
}

}  // namespace
}  // namespace SLIMOPS_ISA
}  // namespace gat
}  // namespace slimops
