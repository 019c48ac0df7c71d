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

static inline bool use_bf16_lanes(const LinearArgs& a, bool kind_has_bf16) {
  return a.x_dtype == kBF16 && kind_has_bf16 && cpu_has_bf16();
}

template <int FMT>
const char* path(const LinearArgs& a) {
  if (a.K == 0) return nullptr;
  if (a.M <= kGemvMaxM) return use_bf16_lanes(a, Traits<FMT>::kBf16) ? "gemv_bf16" : "gemv_f32";
  return nullptr;
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
  if constexpr (T::kBf16) {
    if (use_bf16_lanes(a, true)) {
      const int64_t Kp = (a.K + T::kChunkBf16 - 1) / T::kChunkBf16 * T::kChunkBf16;
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
  const int64_t Kp = (a.K + T::kChunk - 1) / T::kChunk * T::kChunk;
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

template <int FMT, class Generic>
bool run(const LinearArgs& a, Generic&& generic) {
  if (a.K == 0) return false;
  if (a.M <= kGemvMaxM) return run_gemv<FMT>(a, generic);
  return false;
}

}  // namespace avx512
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
