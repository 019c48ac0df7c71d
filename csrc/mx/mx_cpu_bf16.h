// bf16 -> every MX format's quantize in 16-bit lanes (AVX2), included by
// csrc/mx/mx_cpu.cpp in its AVX2 and AVX-512 builds. A bf16 element is 16 bits, so one
// 256-bit register holds 16 of them: the block amax is an unsigned 16-bit max of the
// |x| bits, the scaling by 2^k (k = 127 - scale byte) an exact add to the exponent
// field, and the rounding integer arithmetic on the 7-bit mantissa. This does the
// same integer steps as encode_magnitude_rne (kernels/mx/mx_element.cuh) on twice as
// many lanes per instruction as the fp32 path, bit for bit the same codes.
//
// With v = |x| * 2^k as bf16 bits a' (exponent field e', 7 mantissa bits m):
//   normal element range: code = ((e' - 127 + bias) << mbits) + RNE(m >> (7 - mbits)),
//     the carry of the rounding running into the exponent, as the fp32 path;
//   below it (element subnormals): code = RNE(s * 2^(e' - E0) / 256) with s = 0x80 | m,
//     the power of two taken from a pshufb table indexed by e' (0 where the value
//     rounds to zero), one 16-bit multiply, then a round-half-even shift by 8.
// The exponent add is exact while the result stays a normal bf16; an element that
// would leave that range rounds to code 0 anyway, and so does an input zero or bf16
// subnormal, which the add misreads as 2^(k - 127): that holds while k is at most the
// format's zero threshold (kMaxK below), i.e. for every block but ones whose amax is
// below about 2^-100. Those blocks, NaN-scale blocks and stochastic rounding take the
// generic fp32 path.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include <type_traits>

#include "csrc/common/pack_avx2.h"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {
namespace bf16 {

// Per format: the exponent offset added before rounding (MXINT8 rounds |v| * 2^6 to an
// integer), the largest k with the fast path exact, and the pshufb table of multipliers.
template <int FMT>
struct Fast;

// MXFP (bias B, M mantissa bits): element subnormals RNE(|v| * 2^(B + M - 1)) = RNE(s * 2^(e' - 126 + B + M) / 256),
// the multiplier 2^(i - 1) at i = e' - (126 - B - M) (i = 0: below half the smallest subnormal, 0). An input
// zero, read as 2^(k - 127), rounds to 0 while k <= 126 - B - M. (The table's entries past the subnormals are
// never used: those lanes are normal.)
template <int FMT>
struct FastFp {
  static constexpr int kShift = 0, kLutBase = 126 - mx::format_of(FMT).bias - mx::format_of(FMT).mbits;
  static constexpr int kMaxK = kLutBase;  // E4M3: 116 (v < 2^-10 -> 0); E2M1: 124 (v <= 2^-2 -> 0)
  static inline __m256i lut() {
    return _mm256_setr_epi8(0, 1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0,
                            0, 1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0);
  }
};
// MXINTb: |v| * 2^(b-2) rounded to an integer (e'' <= 125: below 1/2, 0), at most 2^(b-1) - 1.
template <int FMT>
struct FastInt {
  static constexpr int kShift = mx::format_of(FMT).mbits, kMaxK = 125 - kShift, kLutBase = 125;
  static inline __m256i lut() { return FastFp<FMT>::lut(); }
};
template <int FMT>
struct Fast : std::conditional_t<mx::format_of(FMT).is_int, FastInt<FMT>, FastFp<FMT>> {};

static inline __m256i set16(int v) { return _mm256_set1_epi16((short)v); }

// round(p / 256) to nearest even, p unsigned 16-bit
static inline __m256i rne_shift8(__m256i p) {
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi16(p, 8), set16(1));
  return _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(p, set16(127)), odd), 8);
}

// The magnitude code below the normal range (or MXINT8's whole range): RNE(s * lut[e' - base] / 256).
template <int FMT>
static inline __m256i small_codes(__m256i a, __m256i e, __m256i lut) {
  const __m256i idx = _mm256_sub_epi16(e, set16(Fast<FMT>::kLutBase));  // < 0: low byte >= 0x80 -> 0
  const __m256i mul = _mm256_shuffle_epi8(lut, idx);  // high byte of idx is 0x00 (lut[0] = 0) or 0xFF
  const __m256i s = _mm256_or_si256(_mm256_and_si256(a, set16(0x7F)), set16(0x80));
  return rne_shift8(_mm256_mullo_epi16(s, mul));
}

// 16 bf16 elements (bits b) of a block with shift kp/kn (2^k: kp = max(k, 0) << 7,
// kn = max(-k, 0) << 7) -> 16 codes in 16-bit lanes, the sign included.
template <int FMT>
static inline __m256i encode16(__m256i b, __m256i kp, __m256i kn, __m256i lut) {
  const __m256i a = _mm256_subs_epu16(_mm256_adds_epu16(_mm256_and_si256(b, set16(0x7FFF)), kp), kn);
  const __m256i e = _mm256_srli_epi16(a, 7);
  if (mx::format_of(FMT).is_int) {  // two's complement of the clamped magnitude, b bits
    constexpr mx::Format f = mx::format_of(FMT);
    const __m256i mag = _mm256_min_epu16(small_codes<FMT>(a, e, lut), set16(f.max_code));
    const __m256i s = _mm256_srai_epi16(b, 15);
    return _mm256_and_si256(_mm256_sub_epi16(_mm256_xor_si256(mag, s), s), set16((1 << f.bits) - 1));
  }
  // FP: bias, mbits; normal when e' >= 128 - bias
  constexpr int bias = mx::format_of(FMT).bias, mbits = mx::format_of(FMT).mbits;
  constexpr int max_code = mx::format_of(FMT).max_code, sh = 7 - mbits;
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi16(a, sh), set16(1));
  const __m256i c = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(a, set16((1 << (sh - 1)) - 1)), odd), sh);
  __m256i mag = _mm256_sub_epi16(c, set16((127 - bias) << mbits));
  const __m256i normal = _mm256_cmpgt_epi16(e, set16(127 - bias));
  if (FMT == mx::kFp8E4M3) {
    // element subnormals are rare in E4M3 (|x| < 2^-14 amax): only then compute them
    const __m256i t = _mm256_sub_epi16(e, set16(Fast<FMT>::kLutBase + 1));  // 0..3 for e' in 117..120
    const __m256i in_sub = _mm256_cmpeq_epi16(_mm256_andnot_si256(set16(3), t), _mm256_setzero_si256());
    if (__builtin_expect(_mm256_movemask_epi8(in_sub) != 0, 0))
      mag = _mm256_blendv_epi8(small_codes<FMT>(a, e, lut), mag, normal);
    else  // every lane normal or rounding to zero
      mag = _mm256_and_si256(mag, normal);
  } else {
    mag = _mm256_blendv_epi8(small_codes<FMT>(a, e, lut), mag, normal);
  }
  mag = _mm256_min_epu16(mag, set16(max_code));
  constexpr int sign_shift = 16 - mx::format_of(FMT).bits;  // bit 15 -> bit (bits - 1)
  return _mm256_or_si256(mag, _mm256_and_si256(_mm256_srli_epi16(b, sign_shift), set16(1 << (15 - sign_shift))));
}

// 32 codes (two registers of 16-bit lanes, elements 0..15 and 16..31) -> packed bytes.
template <int BITS>
static inline void store32(__m256i c0, __m256i c1, uint8_t* out) {
  const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(c0, c1), 0xD8);  // elements 0..31 in order
  slimops::pack_avx2::pack32<BITS>(bytes, out);
}

// Largest |x| bits of 32 bf16 elements (NaN and Inf above every finite value).
static inline uint32_t amax32(const uint16_t* p) {
  const __m256i m = _mm256_max_epu16(_mm256_and_si256(_mm256_loadu_si256((const __m256i*)p), set16(0x7FFF)),
                                     _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(p + 16)), set16(0x7FFF)));
  const __m128i m1 = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  const __m128i inv = _mm_minpos_epu16(_mm_xor_si128(m1, _mm_set1_epi32(-1)));  // min of ~m = ~max
  return (~(uint32_t)_mm_cvtsi128_si32(inv)) & 0xFFFFu;
}

}  // namespace bf16
}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
