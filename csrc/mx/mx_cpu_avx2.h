// fp32 and bf16 -> every MX format's quantize on AVX2, included by csrc/mx/mx_cpu.cpp in its AVX2
// build: bit for bit the codes of encode_magnitude_rne (kernels/mx/mx_element.cuh), 32 elements at a
// time in four registers of 8 fp32 lanes (bf16 widened exactly, bits << 16), returned as 32 byte codes
// in element order for pack_avx2::pack32 (csrc/common/pack_avx2.h).
//
// A block has scale byte B; its elements are v = x * 2^(127 - B), and:
//   MXINTb: code = clamp(RNE(x * 2^kk), +-max_code) in b bits, kk = 127 - B + M (M = b - 2). The product
//     is exact and rounded once, at 1, by the fused multiply-add x * 2^kk + 1.5 * 2^23 (while
//     |x * 2^kk| < 2^22, which the scale guarantees: |v| < 2^(emax + 1)).
//   MXFP (bias, M mantissa bits): encode_magnitude_rne's steps on |x| instead of |v| (the scaling by a
//     power of two moves every binade alike): the binade is the larger of |x|'s and the element's lowest
//     (subnormals and the first normals share its quantum), q = RNE(|x| / quantum) by the multiply-add
//     |x| * 2^(M - e) + 2^23, and code = ((binade - lowest) << M) + q, the carry of q running into the
//     exponent; clamped at max_code, with its sign, after narrowing to bytes.
// Both need their powers of two to be normal fp32: Block::takes(B) says for which scale bytes; NaN-scale
// blocks and the rest take the generic path.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "csrc/common/pack_avx2.h"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {
namespace avx2 {

static inline __m256i set32(int v) { return _mm256_set1_epi32(v); }

// Four registers of 8 int32 lanes -> 32 bytes, saturated (SIGNED: to int8, else to uint8). The packs
// work per 128-bit half: the bytes come out in element order when the registers hold elements
// 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27 and 12-15 | 28-31 (load_quarters).
template <bool SIGNED>
static inline __m256i narrow(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
  const __m256i w01 = SIGNED ? _mm256_packs_epi32(c0, c1) : _mm256_packus_epi32(c0, c1);
  const __m256i w23 = SIGNED ? _mm256_packs_epi32(c2, c3) : _mm256_packus_epi32(c2, c3);
  return SIGNED ? _mm256_packs_epi16(w01, w23) : _mm256_packus_epi16(w01, w23);
}
// Elements p[4i..4i+3] and p[16+4i..16+4i+3] in one register (i = 0..3), the order narrow wants.
static inline __m256 load_quarters(const float* p, int i) {
  return _mm256_loadu2_m128(p + 16 + 4 * i, p + 4 * i);
}

// The constants of one block (scale byte B) and its 32-element step.
template <int FMT>
struct Block {
  static constexpr mx::Format f = mx::format_of(FMT);
  // MXINT: 2^kk, kk = 127 - B + M, a normal fp32: B in [M, 253 + M]. MXFP: 2^(M - e) for every exponent
  // field e in [B + 1 - bias, 254], a normal fp32: B >= bias + M - 1.
  static inline bool takes(uint32_t byte) {
    const int b = (int)byte;
    return byte != mx::kE8M0NaN && (f.is_int ? b >= f.mbits && b <= 253 + f.mbits : b >= f.bias + f.mbits - 1);
  }

  __m256i s;      // MXINT: 2^kk (fp32 bits)
  __m256i lo_ef;  // MXFP: the exponent field of the element's lowest binade, B + 1 - bias, in place
  __m256i off;    // MXFP: 0x4B000000 (the rounding constant's bits) + ((B + 1 - bias) << M)
  explicit Block(uint32_t byte) : Block(byte, byte) {}
  // Two blocks of 16 in one step: b0 for elements 0..15 (the low 128-bit half of each register, in
  // narrow's order), b1 for 16..31.
  Block(uint32_t b0, uint32_t b1)
      : s(halves((254 + f.mbits - (int)b0) << 23, (254 + f.mbits - (int)b1) << 23)),
        lo_ef(halves(((int)b0 + 1 - f.bias) << 23, ((int)b1 + 1 - f.bias) << 23)),
        off(halves(0x4B000000 + (((int)b0 + 1 - f.bias) << f.mbits),
                   0x4B000000 + (((int)b1 + 1 - f.bias) << f.mbits))) {}
  static inline __m256i halves(int lo, int hi) { return _mm256_setr_m128i(_mm_set1_epi32(lo), _mm_set1_epi32(hi)); }

  // 8 elements -> their codes as int32: MXINT the signed RNE(x * 2^kk), clamped by the caller after
  // narrowing; MXFP the magnitude code (below 256 while |v| < 2^(emax + 1)), its sign and clamp added by
  // the caller.
  inline __m256i codes8(__m256 x) const {
    if (f.is_int) {
      const __m256 magic = _mm256_castsi256_ps(set32(0x4B400000));
      const __m256i n = _mm256_castps_si256(_mm256_fmadd_ps(x, _mm256_castsi256_ps(s), magic));
      return _mm256_sub_epi32(n, set32(0x4B400000));
    }
    // encode_magnitude_rne in x's own terms: the binade e = max(exponent field of |x|, lo_ef), the
    // quantum 2^(e - 127 - M), q = RNE(|x| / quantum), code = ((e - lo_ef) << M) + q
    const __m256i ax = _mm256_and_si256(_mm256_castps_si256(x), set32(0x7FFFFFFF));
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(ax, set32(0x7F800000)), lo_ef);
    const __m256 inv_quantum = _mm256_castsi256_ps(_mm256_sub_epi32(set32((254 + f.mbits) << 23), e));
    const __m256i q = _mm256_castps_si256(
        _mm256_fmadd_ps(_mm256_castsi256_ps(ax), inv_quantum, _mm256_castsi256_ps(set32(0x4B000000))));
    return _mm256_sub_epi32(_mm256_add_epi32(q, _mm256_srli_epi32(e, 23 - f.mbits)), off);
  }

  // 32 fp32 elements at p -> their 32 codes, one per byte, in element order.
  inline __m256i codes32(const float* p) const {
    return codes32(load_quarters(p, 0), load_quarters(p, 1), load_quarters(p, 2), load_quarters(p, 3));
  }
  // 32 bf16 elements at p, widened exactly to fp32 (bits << 16) in the order narrow wants.
  inline __m256i codes32(const uint16_t* p) const {
    const __m256i zero = _mm256_setzero_si256();
    const __m256i r0 = _mm256_loadu2_m128i((const __m128i*)(p + 16), (const __m128i*)p);        // 0-7 | 16-23
    const __m256i r1 = _mm256_loadu2_m128i((const __m128i*)(p + 24), (const __m128i*)(p + 8));  // 8-15 | 24-31
    const auto lo = [&](__m256i r) { return _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, r)); };
    const auto hi = [&](__m256i r) { return _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, r)); };
    return codes32(lo(r0), hi(r0), lo(r1), hi(r1));
  }
  // 32 elements in narrow's order -> their codes in element order.
  inline __m256i codes32(__m256 x0, __m256 x1, __m256 x2, __m256 x3) const {
    const __m256i n = narrow<f.is_int>(codes8(x0), codes8(x1), codes8(x2), codes8(x3));
    if (f.is_int) {  // saturated to int8, then clamped and masked
      const __m256i c = _mm256_min_epi8(_mm256_max_epi8(n, _mm256_set1_epi8((char)-f.max_code)),
                                        _mm256_set1_epi8((char)f.max_code));
      return f.bits == 8 ? c : _mm256_and_si256(c, _mm256_set1_epi8((char)((1 << f.bits) - 1)));
    }
    // the magnitudes clamped at max_code; the signs, narrowed the same way, are bit 7 of each byte
    const __m256i mag = _mm256_min_epu8(n, _mm256_set1_epi8((char)f.max_code));
    const __m256i signs = narrow<true>(_mm256_castps_si256(x0), _mm256_castps_si256(x1), _mm256_castps_si256(x2),
                                       _mm256_castps_si256(x3));
    const __m256i sign =
        _mm256_and_si256(_mm256_srli_epi16(signs, 8 - f.bits), _mm256_set1_epi8((char)(1 << (f.bits - 1))));
    return _mm256_or_si256(mag, sign);
  }
};

// Largest |x| of N = 16 or 32 elements as fp32 bits (NaN and Inf above every finite value; bf16: its
// bits << 16).
template <int N>
static inline uint32_t amax(const float* p) {
  static_assert(N == 16 || N == 32, "16 or 32 elements");
  const __m256i abs = set32(0x7FFFFFFF);
  __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)p), abs);
  for (int i = 8; i < N; i += 8)
    m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(p + i)), abs));
  __m128i r = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  r = _mm_max_epu32(r, _mm_shuffle_epi32(r, 0x4E));
  r = _mm_max_epu32(r, _mm_shuffle_epi32(r, 0xB1));
  return (uint32_t)_mm_cvtsi128_si32(r);
}
template <int N>
static inline uint32_t amax(const uint16_t* p) {
  static_assert(N == 16 || N == 32, "16 or 32 elements");
  const __m256i abs = _mm256_set1_epi16(0x7FFF);
  __m256i m = _mm256_and_si256(_mm256_loadu_si256((const __m256i*)p), abs);
  if (N == 32) m = _mm256_max_epu16(m, _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(p + 16)), abs));
  const __m128i m1 = _mm_max_epu16(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  const __m128i inv = _mm_minpos_epu16(_mm_xor_si128(m1, _mm_set1_epi32(-1)));  // min of ~m = ~max
  return ((~(uint32_t)_mm_cvtsi128_si32(inv)) & 0xFFFFu) << 16;
}

}  // namespace avx2
}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
