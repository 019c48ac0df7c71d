// The medium-M mx_linear kernel of the AVX-512BW build with bf16 x (included by mxgemm_avx512.h):
// a GEMM in dot-product form, for M a little above the small-M kernels' (kGemvMaxM < M <=
// kDotMaxM), where decoding the weight costs as much as multiplying it.
//
// Panel. kDotNR rows of W by kDotKC elements of K are decoded once by the small-M kernels' bf16
// decoders (decode_bf16: table values t = element * 2^kCBf16, in the decoders' lane order, no
// transpose) and scaled in place to the dequantized values: t * 2^(byte - 127 - kCBf16) by adding
// that exponent to the bf16 exponent field of every nonzero t (exact: the GEMM's scale range
// [lo, hi], gemm_range, keeps every nonzero value a normal bf16 and every product with x a normal
// fp32 or zero). fp8 rows with Inf / NaN codes, whose exponent field is full, go to the generic
// kernel, as do rows with a scale byte out of range.
//
// Register tile: kDotMR rows of x (copied once per call into the decoders' order: prepare_x_bf16)
// by kDotNR rows of the panel, 24 accumulators of 16 fp32 lanes each summing vdpbf16ps over the
// panel's K; between panels the lanes wait in an fp32 buffer, and each output is the sum of its 16
// lanes once K is done. The result is the reference's products summed in another order.
#pragma once

namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
namespace avx512 {

// Measured on a 2-core Zen 4 (4096 x 4096, bf16 x, interleaved with nn.Linear): at M = 16 this kernel took
// 0.71-0.80x (8-bit formats) and 0.73x (4-bit) the panel GEMM's time, at M = 64 0.88-0.94x; at M = 128 the two
// are even and at 512 the panel GEMM is 5-8% faster. Of the other tiles tried, 2 x 12 was 1.4-1.7x slower;
// 6 x 4 and 8 x 3 were within the runs' noise of 4 x 6.
constexpr int kDotMaxM = 64, kDotMR = 4, kDotNR = 6, kDotKC = 1024;

// For register r of a chunk: word j -> the chunk's block that its element lies in (blocks of BS).
template <int FMT, int BS>
static inline __m512i dot_word_blocks(int r) {
  alignas(64) uint16_t v[32];
  for (int l = 0; l < 16; ++l)
    for (int w = 0; w < 2; ++w) v[2 * l + w] = (uint16_t)(element_bf16<FMT>(r, l, w) / BS);
  return _mm512_load_si512(v);
}

// Rows n0 .. n0 + ncols of W (good[j]: the row is in range; others get zeros), elements kb .. kb +
// kc (kc a multiple of the chunk), decoded and scaled into P (row j at P + j * kDotKC). fp8 rows
// with Inf / NaN codes are flagged in bad[n] (their panel rows are zeroed).
template <int FMT, int BS>
MXG_BF16 static void dot_panel(const LinearArgs& a, int64_t n0, int ncols, const uint8_t* good, int64_t kb, int kc,
                               const TabBf16& tab, const int16_t* const* sx, uint16_t* P, uint8_t* bad) {
  using T = Traits<FMT>;
  constexpr int E = T::kChunkBf16, R = E / 32, CB = E * T::kBits / 8;
  constexpr bool kFp8 = T::kBits == 8 && !T::f.is_int;
  const int64_t row_bytes = packed_bytes(T::kBits, a.K);
  __m512i wb[R];
  for (int r = 0; r < R; ++r) wb[r] = dot_word_blocks<FMT, BS>(r);
  alignas(64) uint8_t tail[64 + 64];
  for (int j = 0; j < kDotNR; ++j) {
    uint16_t* out = P + (size_t)j * kDotKC;
    if (j >= ncols || !good[j]) {
      memset(out, 0, sizeof(uint16_t) * (size_t)kc);
      continue;
    }
    const uint8_t* row = a.w_data + (n0 + j) * row_bytes;
    prefetch_next(row, row_bytes, kb + kc, kc, T::kBits);
    const int16_t* s = sx[j];
    __mmask32 special = 0;
    for (int64_t c = kb / E; c < (kb + kc) / E; ++c) {
      __m512i w[R];
      decode_bf16<FMT>(chunk_bytes(row, row_bytes, c, CB, tail), tab, w);
      const __m512i blocks = _mm512_loadu_si512(s + c * E / BS);  // the chunk's blocks' exponents
      for (int r = 0; r < R; ++r) {
        if constexpr (kFp8)
          special |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(w[r], _mm512_set1_epi16(0x7F80)),
                                             _mm512_set1_epi16(0x7F80));
        const __m512i add = _mm512_permutexvar_epi16(wb[r], blocks);
        w[r] = _mm512_mask_add_epi16(w[r], _mm512_test_epi16_mask(w[r], _mm512_set1_epi16(0x7F80)), w[r], add);
        _mm512_store_si512(out + (c * E - kb) + 32 * r, w[r]);
      }
    }
    if (special) {
      bad[n0 + j] = 1;
      memset(out, 0, sizeof(uint16_t) * (size_t)kc);
    }
  }
}

// cv[i][j] (+)= the lanes of sum_k x[i][k] * P[j][k] over the panel's kc words, for kDotMR rows xr[i].
MXG_BF16 static inline void dot_micro(const uint16_t* const* xr, const uint16_t* P, int kc, __m512* cv, bool first) {
  __m512 acc[kDotMR][kDotNR];
  for (int i = 0; i < kDotMR; ++i)
    for (int j = 0; j < kDotNR; ++j) acc[i][j] = first ? _mm512_setzero_ps() : cv[i * kDotNR + j];
  for (int k = 0; k < kc; k += 32) {
    __m512i w[kDotNR];
    for (int j = 0; j < kDotNR; ++j) w[j] = _mm512_load_si512(P + (size_t)j * kDotKC + k);
    for (int i = 0; i < kDotMR; ++i) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(xr[i] + k);
      for (int j = 0; j < kDotNR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)w[j], xv);
    }
  }
  for (int i = 0; i < kDotMR; ++i)
    for (int j = 0; j < kDotNR; ++j) cv[i * kDotNR + j] = acc[i][j];
}

// Rows n0 .. n1 of W against the Mp rows of xp (bf16, the decoders' order, row stride Kp, zero rows
// after M); rows out of [lo_b, hi_b] or with fp8 Inf / NaN codes are flagged in bad[n].
template <int FMT, int BS>
MXG_BF16 static void dot_block(const LinearArgs& a, const uint16_t* xp, int64_t Kp, int Mp, int64_t n0, int64_t n1,
                               int lo_b, int hi_b, uint8_t* bad) {
  using T = Traits<FMT>;
  const TabBf16 tab = tab_bf16<FMT>();
  const int64_t row_bytes = packed_bytes(T::kBits, a.K), nblocks = (a.K + BS - 1) / BS;
  const int64_t sxn = Kp / BS + 32;  // every block of Kp, and a whole register past the last
  thread_local Scratch s_p, s_c, s_s;
  uint16_t* P = s_p.get<uint16_t>((size_t)kDotNR * kDotKC);
  __m512* cv = s_c.get<__m512>((size_t)Mp * kDotNR);
  int16_t* sxbuf = s_s.get<int16_t>((size_t)kDotNR * sxn);
  const int16_t* sx[kDotNR];
  uint8_t good[kDotNR];
  for (int64_t nb = n0; nb < n1; nb += kDotNR) {
    const int ncols = (int)(n1 - nb < kDotNR ? n1 - nb : kDotNR);
    for (int j = 0; j < ncols; ++j) {  // the range check, and each block's exponent (byte - 127 - C) << 7
      const int64_t n = nb + j;
      const uint8_t* sc = a.w_scales + n * nblocks;
      good[j] = row_in_range<FMT>(sc, nblocks, a.w_data + n * row_bytes, a.K, BS, lo_b, hi_b);
      if (!good[j]) bad[n] = 1;
      int16_t* s = sxbuf + j * sxn;
      sx[j] = s;
      for (int64_t b = 0; b < nblocks; ++b) s[b] = (int16_t)((sc[b] - 127 - T::kCBf16) * 128);
      memset(s + nblocks, 0, sizeof(int16_t) * (size_t)(sxn - nblocks));
    }
    for (int64_t kb = 0; kb < Kp; kb += kDotKC) {
      const int kc = (int)(Kp - kb < kDotKC ? Kp - kb : kDotKC);
      dot_panel<FMT, BS>(a, nb, ncols, good, kb, kc, tab, sx, P, bad);
      for (int m = 0; m < Mp; m += kDotMR) {
        const uint16_t* xr[kDotMR];
        for (int i = 0; i < kDotMR; ++i) xr[i] = xp + (m + i) * Kp + kb;
        dot_micro(xr, P, kc, cv + (size_t)m * kDotNR, kb == 0);
      }
    }
    for (int m = 0; m < a.M; ++m)
      for (int j = 0; j < ncols; ++j) {
        const int64_t n = nb + j;
        if (bad[n]) continue;
        const float b = a.bias ? load_f32(a.bias, a.bias_dtype, n) : 0.0f;
        store_y(a.y, a.x_dtype, m * a.N + n, _mm512_reduce_add_ps(cv[(size_t)m * kDotNR + j]) + b);
      }
  }
}

}  // namespace avx512
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
