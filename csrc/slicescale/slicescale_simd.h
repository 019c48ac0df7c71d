// The SIMD chunk kernels of the Slice-and-Scale CPU fast path (slicescale_cpu.cpp, driven by
// slicescale_drive.h): each converts a chunk of whole bytes of full blocks whose scale shifts by the
// pair's delta (no clamp, no NaN scale), and returns element bit masks: NaN/Inf source codes
// (their blocks go back through the general path) and, with REPORT, the report flags (inexact,
// saturated, flushed to zero). Bit-exact with the reference: the tables are made by the same
// element function (convert_element), and the MXINT arithmetic is checked against it by the tests.
//
// * Avx2Chunk (AVX2, and AVX-512 without VBMI), 32 elements:
//   - MXINT8: arithmetic on the two's-complement code q, k = bits_src - bits_dst: nearest even
//     q' = (q + 2^(k-1) - 1 + bit k of q) >> k (a saturating add: where it saturates, the result
//     clamps anyway), toward zero q' = (q + (q < 0 ? 2^k - 1 : 0)) >> k, then clamp to
//     +-(2^(b-1) - 1);
//   - MXINT6 and MXINT4: the whole code looked up in 4 registers (a blend tree on bits 4..5) or 1,
//     the report's flags beside it (Tables::code_flags), as for MXFP;
//   - MXFP8: the 7-bit magnitude looked up in 8 registers of 16 entries (pshufb on the low nibble,
//     a blend tree on bits 4..6), the sign ORed back; MXFP6: 2 registers and one blend. With the
//     report, the same walk through Tables::code_flags, whose spare bits hold the flags (bits 4..6
//     for an FP4 target; inexact and saturated in bits 5..6 for FP6, flushed from the codes), masked
//     off before the sign goes back.
//   The report's flags come back per block, not per element (kBlockFlags): a block of 32 or 64
//   elements takes one vptest per flag, a block of 16 one compare and movemask for both halves of the
//   chunk. The MXINT8 flags: |q| > lim << k (saturated), low bits of q lost (inexact), |q| in
//   [1, flush_lim] (flushed).
// * VbmiChunk (AVX-512 VBMI, in a `#pragma GCC target("avx512vbmi")` region), 64 elements: 8-bit
//   codes through the 256-entry table in four registers (two vpermi2b and a blend on bit 7), 6- and
//   4-bit codes spread to bytes with vpermb + vpmultishiftqb and looked up with one vpermb (the
//   64-entry table repeats with the code width, so the bits above the code are ignored).
// Packing: csrc/common/pack_avx2.h (AVX2); VbmiChunk: vpmaddubsw / vpmaddwd put 2, 4 or 4 codes of
// 4, 2 or 6 bits into one word or dword, then a narrowing move (or a byte permute for 6 bits).

#if defined(__AVX2__)

// 32 * SBITS / 8 packed bytes -> 32 codes, one per byte (6-bit codes: the last 12 bytes are read with
// a 16-byte load with `more`, when the next chunk's bytes follow; else with a masked load).
template <int SBITS>
static inline __m256i unpack32(const uint8_t* in, bool more) {
  if (SBITS == 8) return _mm256_loadu_si256((const __m256i*)in);
  if (SBITS == 6) {  // each 128-bit half: 12 bytes -> 16 words (b[j+1]:b[j]) >> 0/6/4/10 (vpmulhuw) -> bytes
    const __m128i b = more ? _mm_loadu_si128((const __m128i*)(in + 12))
                           : _mm_maskload_epi32((const int*)(in + 12), _mm_setr_epi32(-1, -1, -1, 0));
    const __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)in)), b, 1);
    const __m256i lo = _mm256_shuffle_epi8(y, _mm256_setr_epi8(-1, 0, 0, 1, 1, 2, -1, 2, -1, 3, 3, 4, 4, 5, -1, 5, -1,
                                                               0, 0, 1, 1, 2, -1, 2, -1, 3, 3, 4, 4, 5, -1, 5));
    const __m256i hi = _mm256_shuffle_epi8(y, _mm256_setr_epi8(-1, 6, 6, 7, 7, 8, -1, 8, -1, 9, 9, 10, 10, 11, -1, 11,
                                                               -1, 6, 6, 7, 7, 8, -1, 8, -1, 9, 9, 10, 10, 11, -1, 11));
    const __m256i shift = _mm256_setr_epi16(256, 1024, 4096, 64, 256, 1024, 4096, 64, 256, 1024, 4096, 64, 256, 1024,
                                            4096, 64);  // x * 2^(16 - s) >> 16 = x >> s
    const __m256i six = _mm256_set1_epi16(0x3F);
    return _mm256_packus_epi16(_mm256_and_si256(_mm256_mulhi_epu16(lo, shift), six),
                               _mm256_and_si256(_mm256_mulhi_epu16(hi, shift), six));
  }
  const __m128i x = _mm_loadu_si128((const __m128i*)in);  // 4 bits
  const __m128i nib = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(x, nib), hi = _mm_and_si128(_mm_srli_epi16(x, 4), nib);
  return _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
}

template <int SRC, int DST, bool REPORT>
struct Avx2Chunk {
  static constexpr int kElems = 32;
  static constexpr bool kBlockFlags = true;  // Masks' report fields: one bit per block of the chunk
  static constexpr Format s = format_of(SRC), d = format_of(DST);
  // Table registers of 16 entries: FP magnitudes (128 or 32 entries), MXINT6/4 codes (64 or 16); MXINT8: none.
  static constexpr int kTables = s.is_int ? (s.bits < 8 ? 1 << (s.bits - 4) : 0) : 1 << (s.bits - 5);
  static constexpr int k = s.bits - d.bits, lim = (1 << (d.bits - 1)) - 1;  // MXINT
  // MXFP with the report: the flags ride in the code table's spare bits (Tables::code_flags), one walk.
  static constexpr int kFlagShift = d.bits <= 4 ? 4 : 5;
  __m256i t[kTables > 0 ? kTables : 1];
  // Constants kept in memory and used as operands (GCC otherwise rebuilds each set1 inside the loop).
  __m256i sign_bit, nibble, one, bias, kmask, srai_keep, srai_sign, lo_lim, hi_lim, code_mask, big_hi, flush_lim,
      ones, unfold, flag_in, flag_sat, flag_ftz;
  bool truncate;

  Avx2Chunk(const Tables& tab, bool trunc) : truncate(trunc) {
    for (int h = 0; h < kTables; ++h) {
      t[h] = _mm256_broadcastsi128_si256(
          _mm_loadu_si128((const __m128i*)((REPORT ? tab.code_flags : tab.code) + 16 * h)));
    }
    __m256i* all[] = {&sign_bit, &nibble, &one, &bias, &kmask, &srai_keep, &srai_sign, &lo_lim, &hi_lim,
                      &code_mask, &big_hi, &flush_lim, &ones, &unfold, &flag_in, &flag_sat, &flag_ftz};
    sign_bit = _mm256_set1_epi8((char)(1 << (s.bits - 1)));
    nibble = _mm256_set1_epi8(0x0F);
    one = _mm256_set1_epi8(1);
    bias = _mm256_set1_epi8((char)(k > 0 ? (1 << (k - 1)) - 1 : 0));
    kmask = _mm256_set1_epi8((char)((1 << k) - 1));
    srai_keep = _mm256_set1_epi8((char)(0xFF >> k));
    srai_sign = _mm256_set1_epi8((char)(0x80 >> k));
    lo_lim = _mm256_set1_epi8((char)-lim);
    hi_lim = _mm256_set1_epi8((char)lim);
    code_mask = _mm256_set1_epi8((char)((1 << d.bits) - 1));
    big_hi = _mm256_set1_epi8((char)(lim << k));
    // |q| in [1, flush_lim] rounds to 0: nearest even up to 2^(k-1), toward zero up to 2^k - 1.
    flush_lim = _mm256_set1_epi8((char)(k > 0 ? (trunc ? (1 << k) - 1 : 1 << (k - 1)) : 0));
    ones = _mm256_set1_epi8(-1);
    flag_in = _mm256_set1_epi8((char)(1 << kFlagShift));
    flag_sat = _mm256_set1_epi8((char)(2 << kFlagShift));
    flag_ftz = _mm256_set1_epi8((char)(4 << kFlagShift));
    unfold = _mm256_set1_epi8((char)(0x80 | ((1 << (d.bits - 1)) - 1)));  // the magnitude and the special bit
    for (__m256i* v : all) __asm__("" : "+x"(*v));  // opaque: used from memory, not rebuilt in the loop
  }

  // Arithmetic shift right of signed bytes by k.
  inline __m256i srai8(__m256i x) const {
    const __m256i u = _mm256_and_si256(_mm256_srli_epi16(x, k), srai_keep);
    return _mm256_sub_epi8(_mm256_xor_si256(u, srai_sign), srai_sign);
  }

  // One bit per block of BS elements in this chunk: does any byte of v & mask have a bit set?
  template <int BS>
  static inline uint32_t any_in(__m256i v, __m256i mask) {
    if (BS >= 32) return !_mm256_testz_si256(v, mask);
    const uint32_t z = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(v, mask),
                                                                        _mm256_setzero_si256()));
    return (uint32_t)((z & 0xFFFF) != 0xFFFF) | (uint32_t)((z >> 16) != 0xFFFF) << 1;
  }

  // The flags in bits kFlagShift.. of the bytes of r, per block of BS elements in this chunk.
  template <int BS>
  inline void table_flags(__m256i r, Masks& mk) const {
    mk.inexact = any_in<BS>(r, flag_in);
    mk.saturated = any_in<BS>(r, flag_sat);
    mk.flushed = any_in<BS>(r, flag_ftz);
  }

  // The magnitude lookup: 16-entry registers r[], indexed by the low nibble, chosen by bits 4.. of m.
  inline __m256i walk(const __m256i* r, __m256i m) const {
    const __m256i lo = _mm256_and_si256(m, nibble);
    const __m256i s4 = _mm256_slli_epi16(m, 3);
    if (kTables == 1) return _mm256_shuffle_epi8(r[0], lo);
    if (kTables == 2) return _mm256_blendv_epi8(_mm256_shuffle_epi8(r[0], lo), _mm256_shuffle_epi8(r[1], lo), s4);
    __m256i a[4];
    for (int i = 0; i < kTables / 2; ++i)
      a[i] = _mm256_blendv_epi8(_mm256_shuffle_epi8(r[2 * i], lo), _mm256_shuffle_epi8(r[2 * i + 1], lo), s4);
    const __m256i s5 = _mm256_slli_epi16(m, 2);
    if (kTables == 4) return _mm256_blendv_epi8(a[0], a[1], s5);
    const __m256i b0 = _mm256_blendv_epi8(a[0], a[1], s5), b1 = _mm256_blendv_epi8(a[2], a[3], s5);
    return _mm256_blendv_epi8(b0, b1, _mm256_slli_epi16(m, 1));
  }

  // n <= 64 scale bytes -> byte + delta; returns a bit per byte that is NaN or clamps (> 254 - delta).
  static inline uint64_t scales(const uint8_t* in, uint8_t* out, int n) {
    constexpr uint32_t delta = (uint32_t)(s.emax - d.emax);
    uint64_t bad = 0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256i b = _mm256_loadu_si256((const __m256i*)(in + i));
      _mm256_storeu_si256((__m256i*)(out + i), _mm256_add_epi8(b, _mm256_set1_epi8((char)delta)));
      const __m256i ok = _mm256_cmpeq_epi8(_mm256_min_epu8(b, _mm256_set1_epi8((char)(254u - delta))), b);
      bad |= (uint64_t)(uint32_t)~_mm256_movemask_epi8(ok) << i;
    }
    for (; i < n; ++i) {
      const uint32_t b = in[i];
      out[i] = (uint8_t)(b + delta);
      bad |= (uint64_t)(b > 254u - delta) << i;
    }
    return bad;
  }

  template <int BS>
  inline void run(const uint8_t* in, uint8_t* out, bool more, Masks& mk) const {
    const __m256i c = unpack32<s.bits>(in, more);
    __m256i r;
    if constexpr (s.is_int && kTables > 0) {  // MXINT6/4: the code (and its flags) from the table
      static_assert(d.bits <= 4, "the flags ride in bits 4..6 of the code table");
      r = walk(t, c);
      if (REPORT) table_flags<BS>(r, mk);
      r = _mm256_and_si256(r, code_mask);
    } else if constexpr (s.is_int) {
      const __m256i q = c;
      __m256i y;
      if (!truncate) {
        const __m256i lsb = _mm256_and_si256(_mm256_srli_epi16(q, k), one);
        y = srai8(_mm256_adds_epi8(q, _mm256_add_epi8(lsb, bias)));
      } else {
        y = srai8(_mm256_add_epi8(q, _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_setzero_si256(), q), kmask)));
      }
      y = _mm256_min_epi8(_mm256_max_epi8(y, lo_lim), hi_lim);
      r = _mm256_and_si256(y, code_mask);
      if (REPORT) {  // from a = |q| (128 for q = -128): low bits lost, a > lim << k, a - 1 < flush_lim
        const __m256i a = _mm256_abs_epi8(q);
        mk.saturated = any_in<BS>(_mm256_subs_epu8(a, big_hi), ones);
        mk.inexact = mk.saturated | any_in<BS>(q, kmask);
        mk.flushed = any_in<BS>(_mm256_subs_epu8(flush_lim, _mm256_add_epi8(a, ones)), ones);
      }
    } else {
      const __m256i m = _mm256_andnot_si256(sign_bit, c);
      r = walk(t, m);
      if (s.bits == 8) mk.special = (uint32_t)_mm256_movemask_epi8(r);
      if (REPORT) {
        table_flags<BS>(r, mk);  // (bit 7 of a 6-bit target's flags: the special bit, unused)
        r = _mm256_and_si256(r, unfold);
        if (d.bits > 4) {  // flushed: a nonzero magnitude in, zero out (a special code's bit 7 keeps r nonzero)
          const __m256i zero = _mm256_setzero_si256();
          mk.flushed = any_in<BS>(_mm256_andnot_si256(_mm256_cmpeq_epi8(m, zero), _mm256_cmpeq_epi8(r, zero)), ones);
        }
      }
      r = _mm256_or_si256(r, _mm256_srli_epi16(_mm256_and_si256(c, sign_bit), s.bits - d.bits));
    }
    // more: the next chunk writes after this one (not with the report: that loop got 9-15 % slower with it)
    slimops::pack_avx2::pack32<d.bits>(r, out, more && !REPORT);
  }
};

#endif  // __AVX2__
