// 32 b-bit codes, one per byte of an AVX2 register in element order, -> 32 * b / 8 packed bytes
// (element 0 in the low bits of byte 0, the MX packing). Shared by the MX quantize kernels
// (csrc/mx/mx_cpu_avx2.h) and the Slice-and-Scale chunk kernels (csrc/slicescale/slicescale_simd.h).
// vpmaddubsw / vpmaddwd put 2, 4 or 4 codes of 4, 2 or 6 bits into one word or dword; the two 128-bit
// halves are narrowed together (packus) or, for 6 bits, three bytes of each dword kept. A byte with bits
// above b set (Slice-and-Scale's special-code bit) packs to garbage that its caller overwrites.
// `more`: the caller writes the next 32 codes' bytes after these, so a 6-bit pack may write 4 bytes past its
// 24 (each 128-bit half stored whole, the second over the first's 4 spare bytes) in place of a lane-crossing
// permute: MX quantize to FP6 1.02-1.08x, fp8 -> fp6 conversion 1.11-1.19x on a Zen 3 at 8192 x 8192
// (bench/reports/avx2-port-bound-zen3).
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>
#include <stdint.h>

namespace slimops {
namespace pack_avx2 {

template <int BITS>
static inline void pack32(__m256i r, uint8_t* out, bool more = false) {
  static_assert(BITS == 8 || BITS == 6 || BITS == 4 || BITS == 2, "MX code widths");
  if (BITS == 8) {
    _mm256_storeu_si256((__m256i*)out, r);
  } else if (BITS == 4) {  // pairs -> bytes, the two halves narrowed together
    const __m256i w = _mm256_maddubs_epi16(r, _mm256_set1_epi16(0x1001));
    _mm_storeu_si128((__m128i*)out, _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
  } else if (BITS == 2) {  // pairs -> nibbles, narrowed; pairs of nibbles -> bytes, narrowed
    const __m256i w = _mm256_maddubs_epi16(r, _mm256_set1_epi16(0x0401));
    const __m128i n = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    const __m128i b = _mm_maddubs_epi16(n, _mm_set1_epi16(0x1001));
    _mm_storel_epi64((__m128i*)out, _mm_packus_epi16(b, b));
  } else {  // 6 bits: four codes -> a 24-bit dword, three bytes of each kept
    const __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(r, _mm256_set1_epi16(0x4001)),
                                        _mm256_set1_epi32(0x10000001));
    const __m256i p = _mm256_shuffle_epi8(w, _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                                              0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1,
                                                              -1));
    if (more) {  // bytes 24..27: the next step's, written by it
      _mm_storeu_si128((__m128i*)out, _mm256_castsi256_si128(p));
      _mm_storeu_si128((__m128i*)(out + 12), _mm256_extracti128_si256(p, 1));
      return;
    }
    const __m256i q = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 0, 0));
    _mm_storeu_si128((__m128i*)out, _mm256_castsi256_si128(q));
    _mm_storel_epi64((__m128i*)(out + 16), _mm256_extracti128_si256(q, 1));
  }
}

}  // namespace pack_avx2
}  // namespace slimops
#endif  // __AVX2__
