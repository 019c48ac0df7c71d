// The fast mx_linear kernels of the AVX-512BW build (included by csrc/mxgemm/mxgemm_cpu.cpp there):
// chunk decoders of the packed codes into registers, the row and x checks that make their
// arithmetic exact, and the small-M kernels (one pass over the packed weight). The medium-M kernel
// is in mxgemm_avx512_dot.h, the large-M ones in mxgemm_avx512_gemm.h, and which runs in
// mxgemm_avx512_run.h.
//
// Decode. A chunk of kChunk consecutive elements of a row of W is decoded into registers of
// "table values" t = element * 2^kC (exact small numbers: E2M1, E3M2, E2M3 values, MXINT codes as
// integers, E4M3 and E5M2 through fp16 bits and vcvtph2ps), lane l of every register holding kGroup
// consecutive elements in some order (element_f32 / element_bf16 say which); x is copied once per
// call into the same order (prepare_x), so that the dot product pairs each code with its x.
// fp32 lanes (F32): the 8-bit formats from 16 bytes (1 register), 4-bit by vpermps on the nibbles
// (2), 2-bit (4), 6-bit by vpermd + vpshufb into 24-bit groups (4). bf16 lanes (BF16, functions
// compiled for AVX512_BF16 + AVX512_VBMI, used when the CPU has both): 4-bit and 2-bit by vpermw on
// the nibbles / crumbs, 6-bit by vpermb + vpmultishiftqb + vpermt2b + vpermt2w (64-entry table).
//
// Scale. The sum of t * x over the lanes of one block is multiplied by the block's 2^(byte - 127
// - kC) in fp32 (one FMA per chunk and register group); that factor is an exact power of two.
// The products t * x are those of the reference scaled by an exact power of two, so the result is
// the reference's up to the order of the sums, provided that:
//  * the row's every scale byte lies in [lo, hi] (lo: the factor is a normal fp32; hi: the block
//    cannot reach fp32's top, where dequantize saturates: needs_saturation false), except
//    all-zero blocks with byte 0, which contribute zero (row_scales). Other rows (NaN scales,
//    huge or tiny scales, E4M3 NaN codes) go to the generic kernel.
//  * every |x| < 2^100 (no Inf / NaN), so that no partial sum overflows: else the whole call goes
//    to the generic kernel. bf16 dot products (vdpbf16ps treats subnormal inputs and results as
//    zero) also need every nonzero |x| >= 2^-100: then every product of x and t is a multiple of
//    2^-111 and no partial sum is subnormal; else the fp32 lanes run instead.
#pragma once
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "csrc/common/parallel.h"
#include "kernels/mx/mx_element.cuh"

namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
namespace avx512 {

using namespace slimops::mx;

#define MXG_BF16 __attribute__((target("avx512bf16,avx512vbmi")))
#define MXG_INLINE static inline __attribute__((always_inline))

constexpr int kGemvMaxM = 4;     // the small-M kernels take M <= this (above: mxgemm_avx512_dot.h, then the panel GEMM)
constexpr int kXMaxExp = 226;    // exponent field of 2^100: every |x| below it
constexpr int kXMinExpBf16 = 27; // exponent field of 2^-100: every nonzero |x| at or above it (bf16 lanes)

static inline bool cpu_has_bf16() {
  static const bool ok = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi");
  return ok;
}

// ---------------------------------------------------------------------------- formats

template <int FMT>
struct Traits {
  static constexpr Format f = format_of(FMT);
  static constexpr int kBits = f.bits;
  // t = element * 2^kC: MXINT codes as integers; E4M3 through fp16 bits is the element * 2^-8.
  static constexpr int kC = f.is_int ? f.mbits : (FMT == kFp8E4M3 ? -8 : 0);
  static constexpr int kCBf16 = f.is_int ? f.mbits : 0;  // the same for the bf16 lanes' tables
  // fp32 lanes: elements per chunk and per lane.
  static constexpr int kChunk = kBits == 8 ? 16 : kBits == 4 ? 32 : 64;
  static constexpr int kGroup = kChunk / 16;
  // bf16 lanes: elements per chunk and per dword lane.
  static constexpr int kChunkBf16 = kBits == 2 ? 128 : 64;
  static constexpr int kGroupBf16 = kChunkBf16 / 16;
};

// Table value of a code (t = element * 2^C, exact).
template <int FMT>
static inline float table_value(uint32_t code, int C) {
  return decode_element(code, format_of(FMT)) * exp2i(C);
}

// Which element of a chunk lane l of register r holds (fp32 lanes), and word w of dword lane l (bf16).
template <int FMT>
static inline int element_f32(int r, int l) {
  return Traits<FMT>::kGroup * l + r;
}
template <int FMT>
static inline int element_bf16(int r, int l, int w) {
  constexpr int bits = Traits<FMT>::kBits;
  if (bits == 8) return 16 * (l / 4) + 8 * r + 2 * (l % 4) + w;  // vpunpck{l,h}bw of 16-byte lanes
  return bits == 4 ? 4 * l + 2 * w + r : bits == 2 ? 8 * l + 4 * w + r : 4 * l + 2 * r + w;
}

// ---------------------------------------------------------------------------- fp32 lanes

struct TabF32 {
  __m512 t0, t1;  // 16 or 32 fp32 table entries
};

template <int FMT>
static inline TabF32 tab_f32() {
  alignas(64) float t[32];
  constexpr int bits = Traits<FMT>::kBits;
  for (int i = 0; i < 32; ++i)  // 4- and 2-bit: the index's low bits; 6-bit FP: the 32 magnitudes
    t[i] = table_value<FMT>(bits == 4 ? (i & 15) : bits == 2 ? (i & 3) : (uint32_t)i, Traits<FMT>::kC);
  return {_mm512_load_ps(t), _mm512_load_ps(t + 16)};
}

// One chunk of packed bytes at p -> Traits::kGroup registers of table values; E4M3 NaN codes are
// flagged in `special`.
template <int FMT>
MXG_INLINE void decode_f32(const uint8_t* p, const TabF32& tab, __m512* w, __mmask16& special) {
  constexpr int bits = Traits<FMT>::kBits;
  if constexpr (bits == 8) {
    const __m128i b = _mm_loadu_si128((const __m128i*)p);
    if constexpr (FMT == kInt8) {
      w[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
    } else if constexpr (FMT == kFp8E5M2) {  // E5M2 is the top byte of fp16
      w[0] = _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8));
    } else {  // E4M3: sign | 0 | eeee | mmm as fp16 bits is the element * 2^-8
      special |= _mm_cmpeq_epi8_mask(_mm_or_si128(b, _mm_set1_epi8((char)0x80)), _mm_set1_epi8((char)0xFF));
      const __m256i h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7);
      w[0] = _mm512_cvtph_ps(_mm256_and_si256(h, _mm256_set1_epi16((short)0xBFFF)));
    }
  } else if constexpr (bits == 4) {
    const __m512i t = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p));
    w[0] = _mm512_permutexvar_ps(t, tab.t0);  // vpermps reads the index's low 4 bits
    w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 4), tab.t0);
  } else if constexpr (bits == 2) {
    const __m512i t = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)p));
    w[0] = _mm512_permutexvar_ps(t, tab.t0);
    w[1] = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 2), tab.t0);
    w[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 4), tab.t0);
    w[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(t, 6), tab.t0);
  } else {  // 6 bits: 16 groups of 3 bytes -> one 24-bit group a dword lane, then its 4 codes
    const __m512i z = _mm512_maskz_loadu_epi8(0xFFFFFFFFFFFFull, p);
    const __m512i lanes = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11), z);
    const __m512i d = _mm512_shuffle_epi8(
        lanes, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, -128, 3, 4, 5, -128, 6, 7, 8, -128, 9, 10, 11, -128)));
#define MXG_CODE6(K)                                                                                              \
  if constexpr (Traits<FMT>::f.is_int) {                                                                          \
    w[K] = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(d, 26 - 6 * K), 26));                           \
  } else {                                                                                                        \
    const __m512 mag = _mm512_permutex2var_ps(tab.t0, _mm512_srli_epi32(d, 6 * K), tab.t1);                       \
    w[K] = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(mag), _mm512_slli_epi32(d, 26 - 6 * K), \
                                                         _mm512_set1_epi32((int)0x80000000), 0xF8));              \
  }
    MXG_CODE6(0) MXG_CODE6(1) MXG_CODE6(2) MXG_CODE6(3)
#undef MXG_CODE6
  }
}

// ---------------------------------------------------------------------------- bf16 lanes

struct TabBf16 {
  __m512i t0, t1, t2, t3;  // 32 or 64 bf16 entries (t0, t1); fp8: low bytes (t0, t1), high bytes (t2, t3)
};

template <int FMT>
MXG_BF16 static inline TabBf16 tab_bf16() {
  constexpr int bits = Traits<FMT>::kBits;
  if constexpr (bits == 8) {  // the bf16 bits of the 128 magnitudes, split into low and high bytes
    alignas(64) uint8_t t[256];
    for (int i = 0; i < 128; ++i) {
      const uint16_t h = f32_to_bf16(table_value<FMT>((uint32_t)i, Traits<FMT>::kCBf16));
      t[i] = (uint8_t)h;
      t[128 + i] = (uint8_t)(h >> 8);
    }
    return {_mm512_load_si512(t), _mm512_load_si512(t + 64), _mm512_load_si512(t + 128), _mm512_load_si512(t + 192)};
  }
  alignas(64) uint16_t t[64];
  for (int i = 0; i < 64; ++i)
    t[i] = f32_to_bf16(table_value<FMT>(bits == 4 ? (i & 15) : bits == 2 ? (i & 3) : (uint32_t)i, Traits<FMT>::kCBf16));
  return {_mm512_load_si512(t), _mm512_load_si512(t + 32), _mm512_setzero_si512(), _mm512_setzero_si512()};
}

// One chunk (Traits::kChunkBf16 elements) -> 2 (8-, 4-, 6-bit) or 4 (2-bit) registers of bf16 table values.
template <int FMT>
MXG_BF16 MXG_INLINE void decode_bf16(const uint8_t* p, const TabBf16& tab, __m512i* w) {
  constexpr int bits = Traits<FMT>::kBits;
  if constexpr (bits == 8) {  // the magnitude's bf16 bytes by vpermi2b (128 entries), the sign ORed in
    const __m512i c = _mm512_loadu_si512(p);
    const __m512i mag = Traits<FMT>::f.is_int ? _mm512_abs_epi8(c) : c;  // MXINT8: |code|, -128 -> 0x80
    const __m512i lo = _mm512_permutex2var_epi8(tab.t0, mag, tab.t1);
    __m512i hi = _mm512_permutex2var_epi8(tab.t2, mag, tab.t3);
    if (Traits<FMT>::f.is_int)  // |-128| = 128 indexes entry 0: its bf16 high byte is 0x43 (low byte 0, as 0's)
      hi = _mm512_mask_mov_epi8(hi, _mm512_cmpeq_epi8_mask(c, _mm512_set1_epi8((char)0x80)), _mm512_set1_epi8(0x43));
    hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8((char)0x80), 0xF8);
    w[0] = _mm512_unpacklo_epi8(lo, hi);
    w[1] = _mm512_unpackhi_epi8(lo, hi);
  } else if constexpr (bits == 4) {
    const __m512i t = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)p));
    w[0] = _mm512_permutexvar_epi16(t, tab.t0);  // vpermw reads the index's low 5 bits
    w[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(t, 4), tab.t0);
  } else if constexpr (bits == 2) {
    const __m512i t = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)p));
    w[0] = _mm512_permutexvar_epi16(t, tab.t0);
    w[1] = _mm512_permutexvar_epi16(_mm512_srli_epi16(t, 2), tab.t0);
    w[2] = _mm512_permutexvar_epi16(_mm512_srli_epi16(t, 4), tab.t0);
    w[3] = _mm512_permutexvar_epi16(_mm512_srli_epi16(t, 6), tab.t0);
  } else {  // 6 bits: 48 bytes; qword L <- bytes 6L .. 6L + 5 (elements 8L .. 8L + 7), byte e <- code e
    alignas(64) static const uint8_t kQ[64] = {
        0,  1,  2,  3,  4,  5,  5,  5,  6,  7,  8,  9,  10, 11, 11, 11, 12, 13, 14, 15, 16, 17,
        17, 17, 18, 19, 20, 21, 22, 23, 23, 23, 24, 25, 26, 27, 28, 29, 29, 29, 30, 31, 32, 33,
        34, 35, 35, 35, 36, 37, 38, 39, 40, 41, 41, 41, 42, 43, 44, 45, 46, 47, 47, 47};
    // word 2l + v of register r <- code 4l + 2r + v (low byte), zero (high byte: index 64)
    alignas(64) static const uint8_t kW[2][64] = {
        {0,  64, 1,  64, 4,  64, 5,  64, 8,  64, 9,  64, 12, 64, 13, 64, 16, 64, 17, 64, 20, 64,
         21, 64, 24, 64, 25, 64, 28, 64, 29, 64, 32, 64, 33, 64, 36, 64, 37, 64, 40, 64, 41, 64,
         44, 64, 45, 64, 48, 64, 49, 64, 52, 64, 53, 64, 56, 64, 57, 64, 60, 64, 61, 64},
        {2,  64, 3,  64, 6,  64, 7,  64, 10, 64, 11, 64, 14, 64, 15, 64, 18, 64, 19, 64, 22, 64,
         23, 64, 26, 64, 27, 64, 30, 64, 31, 64, 34, 64, 35, 64, 38, 64, 39, 64, 42, 64, 43, 64,
         46, 64, 47, 64, 50, 64, 51, 64, 54, 64, 55, 64, 58, 64, 59, 64, 62, 64, 63, 64}};
    const __m512i z = _mm512_maskz_loadu_epi8(0xFFFFFFFFFFFFull, p);
    const __m512i q = _mm512_permutexvar_epi8(_mm512_load_si512(kQ), z);
    const __m512i b = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x2A241E18120C0600ll), q);
    const __m512i zero = _mm512_setzero_si512();
    w[0] = _mm512_permutex2var_epi16(tab.t0, _mm512_permutex2var_epi8(b, _mm512_load_si512(kW[0]), zero), tab.t1);
    w[1] = _mm512_permutex2var_epi16(tab.t0, _mm512_permutex2var_epi8(b, _mm512_load_si512(kW[1]), zero), tab.t1);
  }
}

// ---------------------------------------------------------------------------- rows and x

// Code e of a row (a little-endian bit stream of `bits`-bit codes, row_bytes long).
static inline uint32_t code_at(const uint8_t* row, int64_t row_bytes, int bits, int64_t e) {
  const int64_t bit = e * bits, byte = bit >> 3;
  const uint32_t lo = row[byte], hi = byte + 1 < row_bytes ? row[byte + 1] : 0u;
  return ((lo | (hi << 8)) >> (bit & 7)) & ((1u << bits) - 1u);
}

// Whether block b of a row holds only zeros (+0 or -0 codes).
template <int FMT>
static bool block_is_zero(const uint8_t* row, int64_t K, int bs, int64_t b) {
  constexpr Format f = format_of(FMT);
  const uint32_t mag = f.is_int ? (1u << f.bits) - 1u : (1u << (f.bits - 1)) - 1u;
  const int64_t end = (b + 1) * bs < K ? (b + 1) * bs : K, row_bytes = packed_bytes(f.bits, K);
  for (int64_t e = b * bs; e < end; ++e)
    if (code_at(row, row_bytes, f.bits, e) & mag) return false;
  return true;
}

// The factors 2^(byte - 127 - C) of a row's blocks (t = element * 2^C) into sf (16 zeros after them);
// false when the row must take the generic kernel: a byte for which that factor is not a normal
// fp32 or whose block can reach fp32's top (needs_saturation), unless it is an all-zero block's 0.
template <int FMT>
static bool row_scales(const uint8_t* sc, int64_t nblocks, const uint8_t* row, int64_t K, int bs, int C, float* sf) {
  constexpr Format f = format_of(FMT);
  const int lo_b = 1 + C > 0 ? 1 + C : 0, hi_b = 254 + C < 253 - f.emax ? 254 + C : 253 - f.emax;
  const __m512i lo = _mm512_set1_epi32(lo_b), hi = _mm512_set1_epi32(hi_b);
  for (int64_t b = 0; b < nblocks; b += 16) {
    const __mmask16 valid = nblocks - b >= 16 ? 0xFFFF : (__mmask16)((1u << (nblocks - b)) - 1u);
    const __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(valid, sc + b));
    _mm512_storeu_si512(sf + b, _mm512_slli_epi32(_mm512_sub_epi32(v, _mm512_set1_epi32(C)), 23));
    __mmask16 out = valid & (_mm512_cmplt_epi32_mask(v, lo) | _mm512_cmpgt_epi32_mask(v, hi));
    while (out) {
      const int i = __builtin_ctz(out);
      out &= out - 1;
      if (sc[b + i] != 0 || !block_is_zero<FMT>(row, K, bs, b + i)) return false;
      sf[b + i] = 0.0f;
    }
  }
  _mm512_storeu_ps(sf + nblocks, _mm512_setzero_ps());
  return true;
}

// Exponent fields of x's largest |x| (255: Inf or NaN) and smallest nonzero |x| (0: subnormal).
struct XRange {
  __m512i vmax = _mm512_setzero_si512(), vmin = _mm512_set1_epi32(255);
  void add(__m512 v) {
    const __m512i a = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF));
    const __m512i e = _mm512_srli_epi32(a, 23);
    vmax = _mm512_max_epi32(vmax, e);
    vmin = _mm512_mask_min_epi32(vmin, _mm512_test_epi32_mask(a, a), vmin, e);
  }
  int emax() const { return _mm512_reduce_max_epi32(vmax); }
  int emin() const { return _mm512_reduce_min_epi32(vmin); }
};

// 16 fp32 values of x at offset off, of which n are in the row (zero past them).
static inline __m512 load16_f32(const void* x, int dt, int64_t off, int64_t n) {
  const __mmask16 m = n >= 16 ? 0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
  if (dt == kF32) return _mm512_maskz_loadu_ps(m, (const float*)x + off);
  const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t*)x + off);
  if (dt == kF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// x [M, K] -> xp [M, Kp] fp32 in the decoders' order (Kp: K rounded up to chunks, zero-padded);
// returns x's range.
template <int FMT>
static XRange prepare_x_f32(const LinearArgs& a, float* xp, int64_t Kp) {
  constexpr int E = Traits<FMT>::kChunk, G = Traits<FMT>::kGroup;
  alignas(64) int32_t idx[E];
  for (int r = 0; r < G; ++r)
    for (int l = 0; l < 16; ++l) idx[16 * r + l] = element_f32<FMT>(r, l);
  XRange range;
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t c = 0; c < Kp; c += E) {
      __m512 v[4];
      for (int i = 0; i < E / 16; ++i) v[i] = load16_f32(a.x, a.x_dtype, m * a.K + c + 16 * i, a.K - c - 16 * i);
      for (int r = 0; r < G; ++r) {
        __m512 o;
        if (G == 1) o = v[0];
        else if (G == 2) o = _mm512_permutex2var_ps(v[0], _mm512_load_si512(idx + 16 * r), v[1]);
        else {  // lanes 0..7 from elements 0..31, 8..15 from 32..63
          const __m512i ix = _mm512_load_si512(idx + 16 * r);
          o = _mm512_mask_blend_ps(0xFF00, _mm512_permutex2var_ps(v[0], ix, v[1]),
                                   _mm512_permutex2var_ps(v[2], _mm512_sub_epi32(ix, _mm512_set1_epi32(32)), v[3]));
        }
        range.add(o);
        _mm512_storeu_ps(xp + m * Kp + c + 16 * r, o);
      }
    }
  return range;
}

// x [M, K] bf16 -> xp [M, Kp] bf16 in the bf16 decoders' order; returns x's range.
template <int FMT>
MXG_BF16 static XRange prepare_x_bf16(const LinearArgs& a, uint16_t* xp, int64_t Kp) {
  constexpr int E = Traits<FMT>::kChunkBf16, R = E / 32;
  alignas(64) uint16_t idx[E];
  for (int r = 0; r < R; ++r)
    for (int l = 0; l < 16; ++l)
      for (int w = 0; w < 2; ++w) idx[32 * r + 2 * l + w] = (uint16_t)element_bf16<FMT>(r, l, w);
  const uint16_t* x = (const uint16_t*)a.x;
  XRange range;
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t c = 0; c < Kp; c += E) {
      __m512i v[4];
      for (int i = 0; i < R; ++i) {
        const int64_t n = a.K - c - 32 * i;
        const __mmask32 msk = n >= 32 ? 0xFFFFFFFFu : (__mmask32)((1ull << (n > 0 ? n : 0)) - 1u);
        v[i] = _mm512_maskz_loadu_epi16(msk, x + m * a.K + c + 32 * i);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i ix = _mm512_load_si512(idx + 32 * r);
        __m512i o;
        if (R == 2) o = _mm512_permutex2var_epi16(v[0], ix, v[1]);
        else  // words 0..15 from elements 0..63, 16..31 from 64..127
          o = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_permutex2var_epi16(v[0], ix, v[1]),
                                      _mm512_permutex2var_epi16(v[2], _mm512_sub_epi16(ix, _mm512_set1_epi16(64)), v[3]));
        range.add(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(o)), 16)));
        range.add(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(o, 1)), 16)));
        _mm512_storeu_si512(xp + m * Kp + c + 32 * r, o);
      }
    }
  return range;
}

// The scale factors of the lanes of chunk c (E elements, G per lane): lane l is in block
// (c * E + G * l) / BS. One block per chunk: a broadcast.
template <int E, int BS>
MXG_INLINE __m512 chunk_scales(const float* sf, int64_t c, __m512i lane_block) {
  if constexpr (E <= BS) return _mm512_set1_ps(sf[c * E / BS]);
  return _mm512_permutexvar_ps(lane_block, _mm512_loadu_ps(sf + c * E / BS));
}

template <int G>
static inline __m512i lane_blocks(int bs) {
  alignas(64) int32_t v[16];
  for (int l = 0; l < 16; ++l) v[l] = G * l / bs;
  return _mm512_load_si512(v);
}

// The packed bytes of chunk c of a row (a zero-padded copy for a chunk that reaches past the row).
MXG_INLINE const uint8_t* chunk_bytes(const uint8_t* row, int64_t row_bytes, int64_t c, int chunk_bytes,
                                      uint8_t* tail) {
  const int64_t off = c * chunk_bytes;
  if (off + chunk_bytes <= row_bytes) return row + off;
  memset(tail, 0, 64);
  if (off < row_bytes) memcpy(tail, row + off, (size_t)(row_bytes - off));
  return tail;
}

// Into L2: the bytes of a row's elements k0 .. k0 + kc, which the next panel decodes (both GEMMs) (the hardware
// prefetchers do not follow a hundred rows read a few lines at a time).
MXG_INLINE void prefetch_next(const uint8_t* row, int64_t row_bytes, int64_t k0, int kc, int bits) {
  const int64_t b0 = k0 * bits / 8, b1 = (k0 + kc) * bits / 8 < row_bytes ? (k0 + kc) * bits / 8 : row_bytes;
  for (int64_t b = b0; b < b1; b += 64) _mm_prefetch((const char*)row + b, _MM_HINT_T1);
}

MXG_INLINE void finish_row(const LinearArgs& a, int M, int64_t n, const __m512* acc) {
  const float b = a.bias ? load_f32(a.bias, a.bias_dtype, n) : 0.0f;
  for (int m = 0; m < M; ++m) store_y(a.y, a.x_dtype, m * a.N + n, _mm512_reduce_add_ps(acc[m]) + b);
}

// ---------------------------------------------------------------------------- small M

// Per-call constants of the small-M kernels for chunks of E elements, G per lane, blocks of BS.
struct GemvRows {
  int64_t row_bytes, nblocks, chunks, full;  // full: chunks whose bytes all lie in the row
  __m512i lane_block;
};

template <int E, int G, int BITS, int BS>
static inline GemvRows gemv_rows_of(const LinearArgs& a, int64_t Kp) {
  GemvRows g;
  g.row_bytes = packed_bytes(BITS, a.K);
  g.nblocks = (a.K + BS - 1) / BS;
  g.chunks = Kp / E;
  g.full = g.row_bytes / (E * BITS / 8);
  g.lane_block = lane_blocks<G>(BS);
  return g;
}

// The U chunks c .. c + U of a row (U: chunks in a block, or 1; xp is padded to whole steps),
// decoded into registers w[U][R] by DECODE(bytes, w[u]), then for each row m of x: the lane-wise dot
// products DOT(d, w[u], offset, m) summed into d, times the chunks' scale factors, into ACC[m].
// TAIL: a chunk may reach past the row's bytes.
#define MXG_BLOCK_STEP(REG, DECODE, DOT, C, ACC, TAIL)                                              \
  {                                                                                                 \
    REG w[U][R];                                                                                    \
    for (int u = 0; u < U; ++u)                                                                     \
      DECODE(TAIL ? chunk_bytes(row, g.row_bytes, (C) + u, CB, tail) : row + ((C) + u) * CB, w[u]); \
    const __m512 s = chunk_scales<E, BS>(sf, (C), g.lane_block);                                    \
    for (int m = 0; m < MR; ++m) {                                                                  \
      __m512 d = _mm512_setzero_ps();                                                               \
      for (int u = 0; u < U; ++u) DOT(d, w[u], ((C) + u) * E, m);                                   \
      ACC[m] = _mm512_fmadd_ps(d, s, ACC[m]);                                                       \
    }                                                                                               \
  }

// Every chunk of a row: steps of U chunks; one row of x: two chains of accumulators (acc, acc1).
#define MXG_ROW(REG, DECODE, DOT)                                                                   \
  {                                                                                                 \
    int64_t c = 0;                                                                                  \
    for (; c + 2 * U <= g.full; c += 2 * U) {                                                       \
      MXG_BLOCK_STEP(REG, DECODE, DOT, c, acc, false)                                               \
      if constexpr (MR == 1) MXG_BLOCK_STEP(REG, DECODE, DOT, c + U, acc1, false)                   \
      else MXG_BLOCK_STEP(REG, DECODE, DOT, c + U, acc, false)                                      \
    }                                                                                               \
    for (; c < g.chunks; c += U) MXG_BLOCK_STEP(REG, DECODE, DOT, c, acc, true)                     \
  }

// Rows n0 .. n1 of W against MR rows of xp (fp32, the decoders' order, row stride Kp); rows that
// must take the generic kernel are flagged in bad[n].
template <int FMT, int MR, int BS>
static void gemv_f32(const LinearArgs& a, const float* xp, int64_t Kp, int64_t n0, int64_t n1, uint8_t* bad) {
  using T = Traits<FMT>;
  constexpr int E = T::kChunk, CB = E * T::kBits / 8, U = BS > E ? BS / E : 1, R = T::kGroup;
  const TabF32 tab = tab_f32<FMT>();
  const GemvRows g = gemv_rows_of<E, T::kGroup, T::kBits, BS>(a, Kp);
  thread_local Scratch s_sf;
  float* sf = s_sf.get<float>((size_t)g.nblocks + 32);
  alignas(64) uint8_t tail[64];
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = a.w_data + n * g.row_bytes;
    if (!row_scales<FMT>(a.w_scales + n * g.nblocks, g.nblocks, row, a.K, BS, T::kC, sf)) {
      bad[n] = 1;
      continue;
    }
    __m512 acc[MR], acc1[MR];
    for (int m = 0; m < MR; ++m) acc[m] = acc1[m] = _mm512_setzero_ps();
    __mmask16 special = 0;
#define DECODE(P, W) decode_f32<FMT>(P, tab, W, special)
#define DOT(D, W, OFF, M)                                                                 \
  for (int r = 0; r < R; ++r) D = _mm512_fmadd_ps(W[r], _mm512_loadu_ps(xp + (M) * Kp + (OFF) + 16 * r), D);
    MXG_ROW(__m512, DECODE, DOT)
#undef DOT
#undef DECODE
    if (special) {
      bad[n] = 1;
      continue;
    }
    if (MR == 1) acc[0] = _mm512_add_ps(acc[0], acc1[0]);
    finish_row(a, MR < a.M ? MR : (int)a.M, n, acc);
  }
}

// The same with bf16 lanes (x bf16, in the bf16 decoders' order).
template <int FMT, int MR, int BS>
MXG_BF16 static void gemv_bf16(const LinearArgs& a, const uint16_t* xp, int64_t Kp, int64_t n0, int64_t n1,
                               uint8_t* bad) {
  using T = Traits<FMT>;
  constexpr int E = T::kChunkBf16, CB = E * T::kBits / 8, U = BS > E ? BS / E : 1, R = E / 32;
  const TabBf16 tab = tab_bf16<FMT>();
  const GemvRows g = gemv_rows_of<E, T::kGroupBf16, T::kBits, BS>(a, Kp);
  thread_local Scratch s_sf;
  float* sf = s_sf.get<float>((size_t)g.nblocks + 32);
  alignas(64) uint8_t tail[64];
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = a.w_data + n * g.row_bytes;
    if (!row_scales<FMT>(a.w_scales + n * g.nblocks, g.nblocks, row, a.K, BS, T::kCBf16, sf)) {
      bad[n] = 1;
      continue;
    }
    __m512 acc[MR], acc1[MR];
    for (int m = 0; m < MR; ++m) acc[m] = acc1[m] = _mm512_setzero_ps();
#define DECODE(P, W) decode_bf16<FMT>(P, tab, W)
#define DOT(D, W, OFF, M)                                                                                   \
  for (int r = 0; r < R; ++r)                                                                               \
    D = _mm512_dpbf16_ps(D, (__m512bh)W[r], (__m512bh)_mm512_loadu_si512(xp + (M) * Kp + (OFF) + 32 * r));
    MXG_ROW(__m512i, DECODE, DOT)
#undef DOT
#undef DECODE
    if (MR == 1) acc[0] = _mm512_add_ps(acc[0], acc1[0]);
    finish_row(a, MR < a.M ? MR : (int)a.M, n, acc);
  }
}
#undef MXG_ROW
#undef MXG_BLOCK_STEP

}  // namespace avx512
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops

#include "csrc/mxgemm/mxgemm_avx512_gemm.h"
#include "csrc/mxgemm/mxgemm_avx512_dot.h"
#include "csrc/mxgemm/mxgemm_avx512_run.h"
