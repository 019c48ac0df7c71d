// The AVX-512 VBMI chunk kernel of the Slice-and-Scale CPU fast path (see slicescale_simd.h for the
// contract). Included by slicescale_cpu.cpp inside a `#pragma GCC target("avx512vbmi")` region of the
// avx512 build (x86-64-v4 has no VBMI), and run only where __builtin_cpu_supports("avx512vbmi").
//
// 64 elements a chunk. Codes: 8-bit, a plain load; 6-bit, the 48 bytes spread so that every qword
// holds two 3-byte groups at bits 0 and 32 (vpermb), then vpmultishiftqb picks the 8 bits at
// 0, 6, 12, 18, 32, 38, 44, 50; 4-bit, 4 bytes per qword and the bits at 0, 4, ..., 28. Lookup:
// 8-bit codes in the 256-entry table held in four registers (vpermi2b on bits 0..6 in two halves,
// chosen by bit 7), narrower codes with one vpermb (bits 0..5; the table repeats with the code
// width). The report flags are a second table looked up the same way, or, for a target of at most 4
// bits, bits 4..6 of the code table's entries (Tables::code_flags), masked off before packing.

template <int SRC, int DST, bool REPORT>
struct VbmiChunk {
  static constexpr int kElems = 64;
  static constexpr bool kBlockFlags = false;  // Masks' report fields: element bits (group_bits reduces)
  static constexpr Format s = format_of(SRC), d = format_of(DST);
  static constexpr bool kFolded = REPORT && d.bits <= 4;  // the flags in the code table
  __m512i t[4], f[4];

  explicit VbmiChunk(const Tables& tab) {
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_loadu_si512((kFolded ? tab.code_flags : tab.code) + 64 * i);
      f[i] = _mm512_loadu_si512(tab.flags + 64 * i);
    }
  }

  // 64 codes, one per byte (bits above a 6- or 4-bit code: the next code's). With `more`, 6-bit codes
  // are read with a full 64-byte load (the next chunk's bytes follow).
  static inline __m512i codes(const uint8_t* in, bool more) {
    if (s.bits == 8) return _mm512_loadu_si512(in);
    if (s.bits == 6) {
      const __m512i x = more ? _mm512_loadu_si512(in) : _mm512_maskz_loadu_epi8((__mmask64)((1ull << 48) - 1), in);
      const __m512i spread = _mm512_set_epi8(
          45, 47, 46, 45, 42, 44, 43, 42, 39, 41, 40, 39, 36, 38, 37, 36, 33, 35, 34, 33, 30, 32, 31, 30, 27, 29, 28, 27,
          24, 26, 25, 24, 21, 23, 22, 21, 18, 20, 19, 18, 15, 17, 16, 15, 12, 14, 13, 12, 9, 11, 10, 9, 6, 8, 7, 6, 3,
          5, 4, 3, 0, 2, 1, 0);
      const __m512i shifts = _mm512_set1_epi64(0x322C2620120C0600ll);  // 0, 6, 12, 18, 32, 38, 44, 50
      return _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(spread, x));
    }
    const __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)in));  // 4 bits
    const __m512i spread = _mm512_set_epi8(
        31, 30, 29, 28, 31, 30, 29, 28, 27, 26, 25, 24, 27, 26, 25, 24, 23, 22, 21, 20, 23, 22, 21, 20, 19, 18, 17, 16,
        19, 18, 17, 16, 15, 14, 13, 12, 15, 14, 13, 12, 11, 10, 9, 8, 11, 10, 9, 8, 7, 6, 5, 4, 7, 6, 5, 4, 3, 2, 1, 0,
        3, 2, 1, 0);
    const __m512i shifts = _mm512_set1_epi64(0x1C1814100C080400ll);  // 0, 4, ..., 28
    return _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(spread, x));
  }

  static inline __m512i lookup(const __m512i* tab, __m512i c) {
    if (s.bits == 8)
      return _mm512_mask_blend_epi8(_mm512_movepi8_mask(c), _mm512_permutex2var_epi8(tab[0], c, tab[1]),
                                    _mm512_permutex2var_epi8(tab[2], c, tab[3]));
    return _mm512_permutexvar_epi8(c, tab[0]);
  }

  // 64 codes (bit 7 ignored) -> 64 * DBITS / 8 bytes; with `more`, a 6-bit chunk is stored with a full
  // 64-byte store whose last 16 bytes the next chunk overwrites.
  static inline void pack(__m512i r, uint8_t* out, bool more) {
    if (d.bits == 4) {
      const __m512i w = _mm512_maddubs_epi16(r, _mm512_set1_epi16(0x1001));
      _mm256_storeu_si256((__m256i*)out, _mm512_cvtepi16_epi8(w));
    } else if (d.bits == 2) {
      const __m512i w = _mm512_madd_epi16(_mm512_maddubs_epi16(r, _mm512_set1_epi16(0x0401)),
                                          _mm512_set1_epi32(0x00100001));
      _mm_storeu_si128((__m128i*)out, _mm512_cvtepi32_epi8(w));
    } else {  // 6 bits: 24-bit dwords, three bytes of each kept
      const __m512i w = _mm512_madd_epi16(_mm512_maddubs_epi16(r, _mm512_set1_epi16(0x4001)),
                                          _mm512_set1_epi32(0x10000001));
      const __m512i keep = _mm512_set_epi8(
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 62, 61, 60, 58, 57, 56, 54, 53, 52, 50, 49, 48, 46, 45, 44,
          42, 41, 40, 38, 37, 36, 34, 33, 32, 30, 29, 28, 26, 25, 24, 22, 21, 20, 18, 17, 16, 14, 13, 12, 10, 9, 8, 6,
          5, 4, 2, 1, 0);
      const __m512i p = _mm512_permutexvar_epi8(keep, w);
      if (more)
        _mm512_storeu_si512(out, p);
      else
        _mm512_mask_storeu_epi8(out, (__mmask64)((1ull << 48) - 1), p);
    }
  }

  // n <= 64 scale bytes -> byte + delta; returns a bit per byte that is NaN or clamps (> 254 - delta).
  static inline uint64_t scales(const uint8_t* in, uint8_t* out, int n) {
    constexpr uint32_t delta = (uint32_t)(s.emax - d.emax);
    const __mmask64 m = n == 64 ? ~0ull : (1ull << n) - 1;
    const __m512i b = _mm512_maskz_loadu_epi8(m, in);
    _mm512_mask_storeu_epi8(out, m, _mm512_add_epi8(b, _mm512_set1_epi8((char)delta)));
    return _mm512_mask_cmpgt_epu8_mask(m, b, _mm512_set1_epi8((char)(254u - delta)));
  }

  // One bit per block of BS elements from the group's element bits w (64 * BS bits): any bit set.
  template <int BS>
  static inline uint64_t group_bits(const uint64_t* w) {
    uint64_t r = 0;
    for (int i = 0; i < BS / 8; ++i) {
      const __m512i v = _mm512_load_si512(w + 8 * i);
      if (BS == 64)
        r |= (uint64_t)_mm512_test_epi64_mask(v, v) << (8 * i);
      else if (BS == 32)
        r |= (uint64_t)_mm512_test_epi32_mask(v, v) << (16 * i);
      else
        r |= (uint64_t)_mm512_test_epi16_mask(v, v) << (32 * i);
    }
    return r;
  }

  template <int BS>  // (the masks are per element: BS is the driver's business)
  inline void run(const uint8_t* in, uint8_t* out, bool more, Masks& mk) const {
    const __m512i c = codes(in, more);
    const __m512i r = lookup(t, c);
    if (s.has_nan_code) mk.special = _mm512_movepi8_mask(r);
    if (REPORT) {
      const __m512i fl = kFolded ? r : lookup(f, c);
      constexpr int sh = kFolded ? 4 : 0;
      mk.inexact = _mm512_test_epi8_mask(fl, _mm512_set1_epi8((char)(kInexact << sh)));
      mk.saturated = _mm512_test_epi8_mask(fl, _mm512_set1_epi8((char)(kSaturated << sh)));
      mk.flushed = _mm512_test_epi8_mask(fl, _mm512_set1_epi8((char)(kFlushed << sh)));
    }
    pack(kFolded ? _mm512_and_si512(r, _mm512_set1_epi8((char)((1 << d.bits) - 1))) : r, out, more);
  }
};
