// Which AVX-512 mx_linear kernel runs (included by mxgemm_avx512.h): run<FMT> takes a call when
// a fast kernel can, computes its rows, sends the rows it cannot take to the generic kernel and
// returns true; false leaves the whole call to the generic kernel.
#pragma once

namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
namespace avx512 {

// Rows of x up to 16 with zero rows added: one instantiation per power of two.
static inline int gemv_rows(int64_t M) { return M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : M <= 8 ? 8 : 16; }

static inline bool use_bf16_lanes(const LinearArgs& a) { return a.x_dtype == kBF16 && cpu_has_bf16(); }

template <int FMT>
const char* path(const LinearArgs& a) {
  if (a.K == 0) return nullptr;
  if (a.M <= kGemvMaxM) return use_bf16_lanes(a) ? "gemv_bf16" : "gemv_f32";
  if (a.M <= kDotMaxM && use_bf16_lanes(a)) return "dot_bf16";
  return use_bf16_lanes(a) ? "gemm_bf16" : "gemm_f32";
}

// The rows flagged in bad[0 .. N) through the generic kernel.
template <class Generic>
static void rows_to_generic(const LinearArgs& a, const uint8_t* bad, Generic&& generic) {
  int64_t count = 0;
  for (int64_t n = 0; n < a.N; ++n) count += bad[n];
  if (!count) return;
  thread_local Scratch s_rows;
  int64_t* rows = s_rows.get<int64_t>((size_t)count);
  count = 0;
  for (int64_t n = 0; n < a.N; ++n)
    if (bad[n]) rows[count++] = n;
  generic(rows, count);
}

template <int FMT, int MR>
static void gemv_f32_all(const LinearArgs& a, const float* xp, int64_t Kp, uint8_t* bad) {
  parallel_ranges(a.N, 64, a.num_threads, [&](int64_t n0, int64_t n1) {
    if (a.block_size == 16) gemv_f32<FMT, MR, 16>(a, xp, Kp, n0, n1, bad);
    else if (a.block_size == 32) gemv_f32<FMT, MR, 32>(a, xp, Kp, n0, n1, bad);
    else gemv_f32<FMT, MR, 64>(a, xp, Kp, n0, n1, bad);
  });
}

template <int FMT, int MR>
static void gemv_bf16_all(const LinearArgs& a, const uint16_t* xp, int64_t Kp, uint8_t* bad) {
  parallel_ranges(a.N, 64, a.num_threads, [&](int64_t n0, int64_t n1) {
    if (a.block_size == 16) gemv_bf16<FMT, MR, 16>(a, xp, Kp, n0, n1, bad);
    else if (a.block_size == 32) gemv_bf16<FMT, MR, 32>(a, xp, Kp, n0, n1, bad);
    else gemv_bf16<FMT, MR, 64>(a, xp, Kp, n0, n1, bad);
  });
}

#define MXG_BY_ROWS(MR, CALL)     \
  switch (MR) {                   \
    case 1: CALL(1); break;       \
    case 2: CALL(2); break;       \
    case 4: CALL(4); break;       \
    case 8: CALL(8); break;       \
    default: CALL(16); break;     \
  }

template <int FMT, class Generic>
static bool run_gemv(const LinearArgs& a, Generic&& generic) {
  using T = Traits<FMT>;
  const int MR = gemv_rows(a.M);
  thread_local Scratch s_x, s_bad;
  uint8_t* bad = s_bad.get<uint8_t>((size_t)a.N);
  memset(bad, 0, (size_t)a.N);
  {
    if (use_bf16_lanes(a)) {
      const int64_t step = T::kChunkBf16 > a.block_size ? T::kChunkBf16 : a.block_size;  // whole steps
      const int64_t Kp = (a.K + step - 1) / step * step;
      uint16_t* xp = s_x.get<uint16_t>((size_t)MR * Kp);
      const XRange r = prepare_x_bf16<FMT>(a, xp, Kp);
      if (r.emax() < kXMaxExp && r.emin() >= kXMinExpBf16) {
        memset(xp + a.M * Kp, 0, sizeof(uint16_t) * (size_t)(MR - a.M) * Kp);
#define CALL(R) gemv_bf16_all<FMT, R>(a, xp, Kp, bad)
        MXG_BY_ROWS(MR, CALL)
#undef CALL
        rows_to_generic(a, bad, generic);
        return true;
      }
    }
  }
  const int64_t step = T::kChunk > a.block_size ? T::kChunk : a.block_size;
  const int64_t Kp = (a.K + step - 1) / step * step;
  float* xp = s_x.get<float>((size_t)MR * Kp);
  const XRange r = prepare_x_f32<FMT>(a, xp, Kp);
  if (r.emax() >= kXMaxExp) return false;
  memset(xp + a.M * Kp, 0, sizeof(float) * (size_t)(MR - a.M) * Kp);
#define CALL(R) gemv_f32_all<FMT, R>(a, xp, Kp, bad)
  MXG_BY_ROWS(MR, CALL)
#undef CALL
  rows_to_generic(a, bad, generic);
  return true;
}

// Scale bytes the GEMM takes: [lo, hi] (mxgemm_avx512_gemm.h says why). bf16 lanes: x's smallest
// nonzero exponent field emin (x has no subnormals).
template <int FMT>
static inline void gemm_range(bool bf16, int emin, int& lo, int& hi) {
  using T = Traits<FMT>;
  constexpr Format f = T::f;
  constexpr int tq = (f.is_int ? -f.mbits : 1 - f.bias - f.mbits) + T::kC;  // log2 of the smallest nonzero t
  lo = 1 + T::kC > 0 ? 1 + T::kC : 0;
  hi = 254 + T::kC < 253 - f.emax ? 254 + T::kC : 253 - f.emax;
  if (bf16) {
    const int normal = 1 + T::kC - tq, products = 1 + T::kC - tq - (emin - 134);
    lo = lo > normal ? lo : normal;
    lo = lo > products ? lo : products;
  }
}

template <int FMT, bool BF16>
static void gemm_all(const LinearArgs& a, const void* x, int64_t m0, int mrows, int lo, int hi, uint8_t* bad) {
  parallel_ranges(a.N, kGemmNC, a.num_threads, [&](int64_t n0, int64_t n1) {
    if (a.block_size == 16) gemm_block<FMT, BF16, 16>(a, x, a.K, m0, mrows, n0, n1, lo, hi, bad);
    else if (a.block_size == 32) gemm_block<FMT, BF16, 32>(a, x, a.K, m0, mrows, n0, n1, lo, hi, bad);
    else gemm_block<FMT, BF16, 64>(a, x, a.K, m0, mrows, n0, n1, lo, hi, bad);
  });
}

template <int FMT, class Generic>
static bool run_gemm(const LinearArgs& a, Generic&& generic) {
  thread_local Scratch s_x, s_bad;
  uint8_t* bad = s_bad.get<uint8_t>((size_t)a.N);
  memset(bad, 0, (size_t)a.N);
  int lo, hi;
  if (use_bf16_lanes(a)) {
    XRange r;  // x's smallest nonzero exponent (subnormals: 0, the fp32 lanes instead)
    const uint16_t* x = (const uint16_t*)a.x;
    for (int64_t i = 0; i < a.M * a.K; i += 16) {
      const __mmask16 m = a.M * a.K - i >= 16 ? 0xFFFF : (__mmask16)((1u << (a.M * a.K - i)) - 1u);
      r.add(_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i)), 16)));
    }
    if (r.emin() >= 1) {
      gemm_range<FMT>(true, r.emin(), lo, hi);
      for (int64_t m0 = 0; m0 < a.M; m0 += kGemmMB) {
        const int rows = (int)(a.M - m0 < kGemmMB ? a.M - m0 : kGemmMB);
        gemm_all<FMT, true>(a, x + m0 * a.K, m0, rows, lo, hi, bad);
      }
      rows_to_generic(a, bad, generic);
      return true;
    }
  }
  gemm_range<FMT>(false, 0, lo, hi);
  for (int64_t m0 = 0; m0 < a.M; m0 += kGemmMB) {
    const int rows = (int)(a.M - m0 < kGemmMB ? a.M - m0 : kGemmMB);
    const float* xf = (const float*)a.x + m0 * a.K;
    if (a.x_dtype != kF32) {  // fp32 copy of the block (exact)
      float* buf = s_x.get<float>((size_t)rows * a.K);
      for (int64_t i = 0; i < rows * a.K; i += 16)
        _mm512_storeu_ps(buf + i, load16_f32(a.x, a.x_dtype, m0 * a.K + i, rows * a.K - i));
      xf = buf;
    }
    gemm_all<FMT, false>(a, xf, m0, rows, lo, hi, bad);
  }
  rows_to_generic(a, bad, generic);
  return true;
}

// The medium-M call: false when x has subnormals (the panel GEMM's fp32 lanes take it).
template <int FMT, class Generic>
static bool run_dot(const LinearArgs& a, Generic&& generic) {
  using T = Traits<FMT>;
  thread_local Scratch s_x, s_bad;
  const int64_t Kp = (a.K + T::kChunkBf16 - 1) / T::kChunkBf16 * T::kChunkBf16;
  const int Mp = (int)((a.M + kDotMR - 1) / kDotMR * kDotMR);
  uint16_t* xp = s_x.get<uint16_t>((size_t)Mp * Kp);
  const XRange r = prepare_x_bf16<FMT>(a, xp, Kp);
  if (r.emin() < 1) return false;
  memset(xp + a.M * Kp, 0, sizeof(uint16_t) * (size_t)(Mp - a.M) * Kp);
  uint8_t* bad = s_bad.get<uint8_t>((size_t)a.N);
  memset(bad, 0, (size_t)a.N);
  int lo, hi;
  gemm_range<FMT>(true, r.emin(), lo, hi);
  parallel_ranges(a.N, kDotNR * 4, a.num_threads, [&](int64_t n0, int64_t n1) {
    if (a.block_size == 16) dot_block<FMT, 16>(a, xp, Kp, Mp, n0, n1, lo, hi, bad);
    else if (a.block_size == 32) dot_block<FMT, 32>(a, xp, Kp, Mp, n0, n1, lo, hi, bad);
    else dot_block<FMT, 64>(a, xp, Kp, Mp, n0, n1, lo, hi, bad);
  });
  rows_to_generic(a, bad, generic);
  return true;
}

template <int FMT, class Generic>
bool run(const LinearArgs& a, Generic&& generic) {
  if (a.K == 0) return false;
  if (a.M <= kGemvMaxM) return run_gemv<FMT>(a, generic);
  if (a.M <= kDotMaxM && use_bf16_lanes(a) && run_dot<FMT>(a, generic)) return true;
  return run_gemm<FMT>(a, generic);
}

}  // namespace avx512
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
