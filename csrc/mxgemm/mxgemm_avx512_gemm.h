// The large-M mx_linear kernels of the AVX-512BW build (included by mxgemm_avx512.h): a blocked
// GEMM whose B panels are decoded from the packed weight, kNC rows of W by kKC elements of K at a
// time, and reused by every row of an x block (kMB rows), so that the decode costs 1 / kMB of the
// multiply-adds.
//
// Panel. Each row's chunks go through the small-M kernels' decoders (decode_f32: table values t
// in fp32 lanes), times the lanes' block factors 2^(byte - 127 - kC) (exact: the dequantized
// values themselves), then 16 rows at a time through a 16 x 16 transpose into the panel, k-major:
// fp32 lanes P[k][n] (FMA kernel), or bf16 pairs P[k / 2][n] = (w[n][k], w[n][k + 1]) (the high
// halves of the fp32 values, exact) for vdpbf16ps with x's natural pairs.
//
// Register tile: kMR rows of x by 64 rows of W, 24 accumulators, summed from zero over each panel
// and added to an fp32 block of y (kMB x kNC), which is rounded to y's dtype once.
//
// Exactness (rows outside it go to the generic kernel): every scale byte in [lo, hi] (or an
// all-zero block's 0). fp32 lanes: lo makes the factor a normal fp32; then every dequantized value
// is exact in fp32 and the products and sums are the reference's, in another order. bf16 lanes
// (vdpbf16ps flushes subnormal inputs and results to zero): lo also makes every nonzero value a
// normal bf16 and every product with x a multiple of 2^-126 or more (from x's smallest nonzero
// exponent), so that nothing is flushed; x with subnormals takes the fp32 lanes.
#pragma once

namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
namespace avx512 {

constexpr int kGemmMB = 512, kGemmKC = 256, kGemmNC = 128, kGemmMR = 6;

// In-place transpose of 16 rows of 16 dwords.
MXG_INLINE void transpose16(__m512i* r) {
  __m512i t[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {  // r[4k + c]: lane q holds column 4q + c of rows 4k .. 4k + 3
    r[4 * k] = _mm512_unpacklo_epi64(t[4 * k], t[4 * k + 2]);
    r[4 * k + 1] = _mm512_unpackhi_epi64(t[4 * k], t[4 * k + 2]);
    r[4 * k + 2] = _mm512_unpacklo_epi64(t[4 * k + 1], t[4 * k + 3]);
    r[4 * k + 3] = _mm512_unpackhi_epi64(t[4 * k + 1], t[4 * k + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i w0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), w1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i w2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
    const __m512i w3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    t[c] = _mm512_shuffle_i32x4(w0, w2, 0x88);
    t[4 + c] = _mm512_shuffle_i32x4(w0, w2, 0xDD);
    t[8 + c] = _mm512_shuffle_i32x4(w1, w3, 0x88);
    t[12 + c] = _mm512_shuffle_i32x4(w1, w3, 0xDD);
  }
  for (int j = 0; j < 16; ++j) r[j] = t[j];
}

// y[off + l] = v[l] rounded to y's dtype for the lanes l of mask (bf16: f32_to_bf16's rounding, vectorised).
MXG_INLINE void store16_y(void* y, int dt, int64_t off, __m512 v, __mmask16 mask) {
  if (dt == kF32) {
    _mm512_mask_storeu_ps((float*)y + off, mask, v);
  } else if (dt == kBF16) {
    const __m512i u = _mm512_castps_si512(v), one = _mm512_set1_epi32(1);
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), _mm512_and_si512(_mm512_srli_epi32(u, 16), one)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    const __m512i h = _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    _mm256_mask_storeu_epi16((uint16_t*)y + off, mask, _mm512_cvtepi32_epi16(h));
  } else {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    for (int l = 0; l < 16; ++l)
      if (mask >> l & 1) store_y(y, dt, off + l, t[l]);
  }
}

// Index (element for fp32 lanes, pair for bf16) in the panel of lane l of staged register v.
template <int FMT, bool BF16>
static inline int panel_index(int v, int l) {
  constexpr int E = Traits<FMT>::kChunk, G = Traits<FMT>::kGroup;
  if (!BF16) return (v / G) * E + G * l + v % G;
  return G == 4 ? 32 * (v / 2) + 2 * l + (v & 1) : 16 * v + l;
}

// Whether every block of a row lies in [lo, hi] or is an all-zero block with byte 0.
template <int FMT>
static bool row_in_range(const uint8_t* sc, int64_t nblocks, const uint8_t* row, int64_t K, int bs, int lo_b,
                         int hi_b) {
  const __m512i lo = _mm512_set1_epi8((char)lo_b), hi = _mm512_set1_epi8((char)hi_b);
  for (int64_t b = 0; b < nblocks; b += 64) {
    const __mmask64 valid = nblocks - b >= 64 ? ~0ull : (1ull << (nblocks - b)) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(valid, sc + b);
    __mmask64 out = valid & (_mm512_cmplt_epu8_mask(v, lo) | _mm512_cmpgt_epu8_mask(v, hi));
    while (out) {
      const int i = __builtin_ctzll(out);
      out &= out - 1;
      if (sc[b + i] != 0 || !block_is_zero<FMT>(row, K, bs, b + i)) return false;
    }
  }
  return true;
}

// Panel of rows n0 .. n0 + ncols (good[j]: the row is in range; others get zero columns), elements
// kb .. kb + kc, into P (BF16: kKC / 2 x kNC pairs, else kKC x kNC fp32).
template <int FMT, bool BF16, int BS>
static void decode_panel(const LinearArgs& a, int64_t n0, int ncols, const uint8_t* good, int64_t kb, int kc,
                         const TabF32& tab, uint32_t* P, uint8_t* bad) {
  using T = Traits<FMT>;
  constexpr int E = T::kChunk, G = T::kGroup, CB = E * T::kBits / 8;
  constexpr int V = BF16 ? kGemmKC / 32 : kGemmKC / 16;  // staged registers per row
  const int64_t row_bytes = packed_bytes(T::kBits, a.K), nblocks = (a.K + BS - 1) / BS;
  const int chunks = (kc + E - 1) / E, vs = !BF16 ? chunks * G : G == 4 ? chunks * 2 : (kc + 31) / 32;
  const __m512i lb = lane_blocks<G>(BS);
  alignas(64) uint32_t stage[V][16][16];
  alignas(64) float sf[kGemmKC / 16 + 16];  // the panel's blocks (at most kKC / 16), zeros after them
  alignas(64) uint8_t tail[64];
  for (int r16 = 0; r16 < kGemmNC; r16 += 16) {
    for (int i = 0; i < 16; ++i) {
      const int j = r16 + i;
      if (j >= ncols || !good[j]) {
        memset(stage[0][i], 0, 64);
        for (int v = 1; v < vs; ++v) memset(stage[v][i], 0, 64);
        continue;
      }
      const int64_t n = n0 + j;
      const uint8_t* row = a.w_data + n * row_bytes;
      prefetch_next(row, row_bytes, kb + kc, kc, T::kBits);
      const uint8_t* sc = a.w_scales + n * nblocks + kb / BS;
      const int nb = (int)((kb + kc + BS - 1) / BS - kb / BS);
      memset(sf, 0, sizeof(sf));
      for (int b = 0; b < nb; b += 16) {  // 2^(byte - 127 - kC): exact in range (zero blocks: any finite)
        const __mmask16 valid = nb - b >= 16 ? 0xFFFF : (__mmask16)((1u << (nb - b)) - 1u);
        const __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(valid, sc + b));
        _mm512_store_si512(sf + b, _mm512_maskz_slli_epi32(valid, _mm512_sub_epi32(v, _mm512_set1_epi32(T::kC)), 23));
      }
      __mmask16 special = 0;
      for (int c = 0; c < chunks; ++c) {
        __m512 w[G];
        decode_f32<FMT>(chunk_bytes(row, row_bytes, (kb / E) + c, CB, tail), tab, w, special);
        const __m512 s = chunk_scales<E, BS>(sf, c, lb);
        for (int r = 0; r < G; ++r) w[r] = _mm512_mul_ps(w[r], s);
        if constexpr (!BF16) {
          for (int r = 0; r < G; ++r) _mm512_store_ps((float*)stage[c * G + r][i], w[r]);
        } else if constexpr (G == 1) {  // two chunks of 16 make 16 pairs: the high halves of each lane
          alignas(64) static const uint16_t kHi[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21,
                                                       23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43,
                                                       45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
          if (c & 1) {
            const __m512i lo = _mm512_load_si512(stage[c / 2][i]);
            _mm512_store_si512(stage[c / 2][i], _mm512_permutex2var_epi16(lo, _mm512_load_si512(kHi),
                                                                          _mm512_castps_si512(w[0])));
          } else {
            _mm512_store_ps((float*)stage[c / 2][i], w[0]);
            if (c + 1 == chunks)  // an odd last chunk: pair it with zeros
              _mm512_store_si512(stage[c / 2][i], _mm512_permutex2var_epi16(_mm512_castps_si512(w[0]),
                                                                            _mm512_load_si512(kHi),
                                                                            _mm512_setzero_si512()));
          }
        } else {  // lanes of w[2q] and w[2q + 1] hold consecutive elements: one pair a lane
          for (int q = 0; q < G / 2; ++q)
            _mm512_store_si512(stage[c * (G / 2) + q][i],
                               _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_srli_epi32(_mm512_castps_si512(w[2 * q]), 16),
                                                       _mm512_castps_si512(w[2 * q + 1])));
        }
      }
      if (special) {  // an E4M3 NaN code: a zero column here; the row is redone by the generic kernel
        for (int v = 0; v < vs; ++v) memset(stage[v][i], 0, 64);
        bad[n] = 1;
      }
    }
    for (int v = 0; v < vs; ++v) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(stage[v][i]);
      transpose16(r);
      for (int l = 0; l < 16; ++l) _mm512_store_si512(P + (size_t)panel_index<FMT, BF16>(v, l) * kGemmNC + r16, r[l]);
    }
  }
}

// c[i][0 .. 64) (+)= sum_k xr[i][k] * P[k][0 .. 64) for the kMR rows xr[i] (fp32, at the panel's first k).
static inline void micro_f32(const float* const* xr, const uint32_t* P, int kc, float* c, bool first) {
  __m512 acc[kGemmMR][4];
  for (int i = 0; i < kGemmMR; ++i)
    for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const float* p = (const float*)P + (size_t)k * kGemmNC;
    const __m512 b0 = _mm512_load_ps(p), b1 = _mm512_load_ps(p + 16), b2 = _mm512_load_ps(p + 32),
                 b3 = _mm512_load_ps(p + 48);
    for (int i = 0; i < kGemmMR; ++i) {
      const __m512 xb = _mm512_set1_ps(xr[i][k]);
      acc[i][0] = _mm512_fmadd_ps(xb, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(xb, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(xb, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(xb, b3, acc[i][3]);
    }
  }
  for (int i = 0; i < kGemmMR; ++i)
    for (int v = 0; v < 4; ++v) {
      float* o = c + (size_t)i * kGemmNC + 16 * v;
      _mm512_store_ps(o, first ? acc[i][v] : _mm512_add_ps(acc[i][v], _mm512_load_ps(o)));
    }
}

// The same with bf16 pairs: kc elements of K (the last pair of an odd kc gets x's last element alone).
MXG_BF16 static inline void micro_bf16(const uint16_t* const* xr, const uint32_t* P, int kc, float* c, bool first) {
  __m512 acc[kGemmMR][4];
  for (int i = 0; i < kGemmMR; ++i)
    for (int v = 0; v < 4; ++v) acc[i][v] = _mm512_setzero_ps();
  const int pairs = (kc + 1) / 2;
  for (int p = 0; p < pairs; ++p) {
    const uint32_t* q = P + (size_t)p * kGemmNC;
    const __m512i b0 = _mm512_load_si512(q), b1 = _mm512_load_si512(q + 16), b2 = _mm512_load_si512(q + 32),
                  b3 = _mm512_load_si512(q + 48);
    const bool half = 2 * p + 1 == kc;
    for (int i = 0; i < kGemmMR; ++i) {
      uint32_t xv;
      if (__builtin_expect(half, 0)) xv = xr[i][2 * p];
      else memcpy(&xv, xr[i] + 2 * p, 4);
      const __m512bh xb = (__m512bh)_mm512_set1_epi32((int)xv);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)b0, xb);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)b1, xb);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], (__m512bh)b2, xb);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], (__m512bh)b3, xb);
    }
  }
  for (int i = 0; i < kGemmMR; ++i)
    for (int v = 0; v < 4; ++v) {
      float* o = c + (size_t)i * kGemmNC + 16 * v;
      _mm512_store_ps(o, first ? acc[i][v] : _mm512_add_ps(acc[i][v], _mm512_load_ps(o)));
    }
}

// Rows n0 .. n1 of W against the x block (mrows rows from row m0 of y; xb: fp32 or bf16 rows of stride
// ldx); rows out of [lo_b, hi_b] or with E4M3 NaN codes are flagged in bad[n].
template <int FMT, bool BF16, int BS>
static void gemm_block(const LinearArgs& a, const void* xb, int64_t ldx, int64_t m0, int mrows, int64_t n0,
                       int64_t n1, int lo_b, int hi_b, uint8_t* bad) {
  using T = Traits<FMT>;
  const TabF32 tab = tab_f32<FMT>();
  const int64_t row_bytes = packed_bytes(T::kBits, a.K), nblocks = (a.K + BS - 1) / BS;
  thread_local Scratch s_p, s_c;
  uint32_t* P = s_p.get<uint32_t>((size_t)kGemmKC * kGemmNC);
  float* C = s_c.get<float>((size_t)(kGemmMB + kGemmMR) * kGemmNC);
  alignas(64) static const uint16_t zeros16[kGemmKC] = {};
  alignas(64) static const float zeros32[kGemmKC] = {};
  uint8_t good[kGemmNC];
  for (int64_t nb = n0; nb < n1; nb += kGemmNC) {
    const int ncols = (int)(n1 - nb < kGemmNC ? n1 - nb : kGemmNC);
    for (int j = 0; j < ncols; ++j) {
      const int64_t n = nb + j;
      good[j] = row_in_range<FMT>(a.w_scales + n * nblocks, nblocks, a.w_data + n * row_bytes, a.K, BS, lo_b, hi_b);
      if (!good[j]) bad[n] = 1;
    }
    for (int64_t kb = 0; kb < a.K; kb += kGemmKC) {
      const int kc = (int)(a.K - kb < kGemmKC ? a.K - kb : kGemmKC);
      decode_panel<FMT, BF16, BS>(a, nb, ncols, good, kb, kc, tab, P, bad);
      for (int m = 0; m < mrows; m += kGemmMR) {
        const void* xr[kGemmMR];
        for (int i = 0; i < kGemmMR; ++i)  // the rows' elements kb .. kb + kc; rows past the block read zeros
          xr[i] = m + i < mrows ? (const uint8_t*)xb + ((m + i) * ldx + kb) * (BF16 ? 2 : 4)
                                : (BF16 ? (const void*)zeros16 : (const void*)zeros32);
        for (int j = 0; j < ncols; j += 64) {
          float* c = C + (size_t)m * kGemmNC + j;
          if constexpr (BF16) micro_bf16((const uint16_t* const*)xr, P + j, kc, c, kb == 0);
          else micro_f32((const float* const*)xr, P + j, kc, c, kb == 0);
        }
      }
    }
    for (int j = 0; j < ncols; j += 16) {  // y = C + bias, 16 columns at a time, skipping the bad rows of W
      const int64_t n = nb + j;
      const __mmask16 in = ncols - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ncols - j)) - 1u);
      const __mmask16 ok = _mm_mask_cmpeq_epi8_mask(in, _mm_maskz_loadu_epi8(in, bad + n), _mm_setzero_si128());
      const __m512 b = a.bias ? load16_f32(a.bias, a.bias_dtype, n, ncols - j) : _mm512_setzero_ps();
      for (int m = 0; m < mrows; ++m)
        store16_y(a.y, a.x_dtype, (m0 + m) * a.N + n, _mm512_add_ps(_mm512_load_ps(C + (size_t)m * kGemmNC + j), b), ok);
    }
  }
}

}  // namespace avx512
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
