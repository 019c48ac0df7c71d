// mx_linear on the CPU: y = x @ W.T + bias, W an MX weight [N, K] packed along K, never decoded whole.
// Compiled once per instruction set (SLIMOPS_ISA = avx512, avx2, baseline); bind_mxgemm.cpp picks
// one at run time. Threads split N (the rows of W).
//
// The generic kernel (every build, every format, every case) is a blocked GEMM on exact values:
// a panel of kNC rows of W by kKC elements of K is decoded to fp32 by the MX element math
// (kernels/mx/mx_element.cuh: decode_lanes times the block's scale, saturated at fp32's largest
// finite value where the scale can reach it: the values of mx_dequantize to fp32, bit for bit),
// stored k-major, and multiplied by kMR rows of x at a time (widened to fp32, exact) in a register
// tile of kMR x kNR fp32 accumulators (outer products, FMA). Its result is the reference's up to
// the order of the fp32 sums.
//
// The AVX-512 build adds the fast kernels of csrc/mxgemm/mxgemm_avx512.h (small M: the packed
// weight decoded in registers, read once; medium M with bf16 x: dot products on panels of a few
// rows decoded once, mxgemm_avx512_dot.h; large M: bf16 or fp32 products on transposed decoded
// panels, mxgemm_avx512_gemm.h). They take the rows of W whose every scale byte lies in a range where their arithmetic
// is exact (mxgemm_avx512.h says which); the other rows (NaN-scale blocks, scales that saturate or
// underflow) go through the generic kernel above, so every row gets the reference's semantics.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csrc/common/parallel.h"
#include "csrc/mxgemm/mxgemm_cpu.h"
#include "kernels/mx/mx_element.cuh"
#include "kernels/mx/mx_params.h"

namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
namespace {

using namespace slimops::mx;

// 32-bit lanes at the build's register width, and the register tile of the generic GEMM.
#if defined(__AVX512F__)
constexpr int kVec = 16, kMR = 6, kNRV = 4;
#elif defined(__AVX2__)
constexpr int kVec = 8, kMR = 4, kNRV = 2;
#else
constexpr int kVec = 4, kMR = 4, kNRV = 2;
#endif
constexpr int kNR = kNRV * kVec;  // columns (rows of W) of the register tile
constexpr int kKC = 128;          // elements of K per decoded panel (a multiple of every block size)
constexpr int kNC = 128;          // rows of W per decoded panel (a multiple of kNR)
constexpr int kMB = 512;          // rows of x per pass over a panel
typedef uint32_t u32v __attribute__((vector_size(kVec * 4)));
typedef float f32v __attribute__((vector_size(kVec * 4)));

// ---------------------------------------------------------------------------- scratch
// Per-thread buffers kept across calls (OpenMP's threads persist), so that a call touches no
// fresh pages once the sizes have been seen.

struct Scratch {
  void* p = nullptr;
  size_t cap = 0;
  ~Scratch() { free(p); }
  template <class T>
  T* get(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    if (bytes > cap) {
      free(p);
      p = aligned_alloc(64, bytes);
      cap = p ? bytes : 0;
    }
    return (T*)p;
  }
};

// ---------------------------------------------------------------------------- x, bias, y

static inline float load_f32(const void* p, int dt, int64_t i) {
  if (dt == kF32) return ((const float*)p)[i];
  const uint16_t h = ((const uint16_t*)p)[i];
  return dt == kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

static inline void store_y(void* y, int dt, int64_t i, float v) {
  if (dt == kF32) ((float*)y)[i] = v;
  else ((uint16_t*)y)[i] = dt == kBF16 ? f32_to_bf16(v) : f32_to_f16(v);
}

// ---------------------------------------------------------------------------- exact decode

// Elements k .. k + 15 (k a multiple of 16, k < K) of a row of W -> their fp32 values: exactly
// what mx_dequantize writes for fp32 (the element times 2^(byte - 127), saturated at fp32's
// largest finite value; NaN for a NaN scale or an E4M3 NaN code); zero past K.
template <int FMT>
static inline void decode16_exact(const uint8_t* row, int64_t K, int64_t k, uint32_t byte, float* out) {
  constexpr Format f = format_of(FMT);
  const uint8_t* src = row + k * f.bits / 8;
  alignas(64) uint8_t tail[16];
  const bool partial = k + 16 > K;
  if (partial) {  // the row's last bytes, zero-padded
    memset(tail, 0, sizeof(tail));
    memcpy(tail, src, (size_t)(packed_bytes(f.bits, K) - k * f.bits / 8));
    src = tail;
  }
  alignas(64) uint32_t codes[16];
  unpack16<f.bits>(src, codes);
  const float scale = scale_of(byte);
  const bool sat = needs_saturation(byte, f, kF32);
  for (int h = 0; h < 16; h += kVec) {
    u32v c;
    memcpy(&c, codes + h, sizeof(c));
    const f32v d = decode_lanes<u32v, f32v>(c, f);
    f32v v = byte == 0 ? (d * 0x1p-64f) * 0x1p-63f : d * scale;  // 2^-127 in two exact steps (no subnormal operand)
    if (sat) v = finish_decoded<u32v, f32v>(d, v, kF32MaxBits);
    memcpy(out + h, &v, sizeof(v));
  }
  if (partial)
    for (int i = (int)(K - k); i < 16; ++i) out[i] = 0.0f;
}

// The panel P[k][j] (kKC x kNC, k-major) of rows n_j of W, elements kb .. kb + kc: exact fp32
// values; zero for j >= ncols.
template <int FMT>
static void decode_panel(const LinearArgs& a, const int64_t* rows, int64_t n0, int ncols, int64_t kb, int kc,
                         float* P) {
  const int64_t row_bytes = packed_bytes(format_of(FMT).bits, a.K), nblocks = (a.K + a.block_size - 1) / a.block_size;
  alignas(64) float v[16];
  for (int j = 0; j < kNC; ++j) {
    if (j >= ncols) {
      for (int k = 0; k < kc; ++k) P[k * kNC + j] = 0.0f;
      continue;
    }
    const int64_t n = rows ? rows[j] : n0 + j;
    const uint8_t* row = a.w_data + n * row_bytes;
    const uint8_t* sc = a.w_scales + n * nblocks;
    for (int k = 0; k < kc; k += 16) {
      decode16_exact<FMT>(row, a.K, kb + k, sc[(kb + k) / a.block_size], v);
      const int m = kc - k < 16 ? kc - k : 16;
      for (int i = 0; i < m; ++i) P[(k + i) * kNC + j] = v[i];
    }
  }
}

// ---------------------------------------------------------------------------- generic GEMM

// c[i][0 .. kNR) (+)= sum_k xt[i][k] * P[k][0 .. kNR) for i < kMR: a three-level sum. The register
// tile sums each kSub elements of K from zero; those sums are added into a panel sum (kKC / kSub of
// them), and the panel sum is added to c once. The longest chain of roundings is then
// kSub + kKC / kSub + K / kKC additions (69 for K = 4099), not K: the error of a long K stays near
// that of a blocked BLAS (with two levels, K / kSub partial sums chained into c gave 5.6 ulp of the
// sum of magnitudes at M = 1, K = 4099, against MKL's 0.7).
constexpr int kSub = 32;

static inline void micro_tile(const float* xt, const float* P, int kc, float* c, bool first) {
  alignas(64) f32v pan[kMR][kNRV];
  for (int k0 = 0; k0 < kc; k0 += kSub) {
    f32v acc[kMR][kNRV];
    for (int i = 0; i < kMR; ++i)
      for (int v = 0; v < kNRV; ++v) acc[i][v] = f32v{};
    const int k1 = kc - k0 < kSub ? kc : k0 + kSub;
    for (int k = k0; k < k1; ++k) {
      f32v w[kNRV];
      for (int v = 0; v < kNRV; ++v) memcpy(&w[v], P + k * kNC + v * kVec, sizeof(f32v));
      for (int i = 0; i < kMR; ++i) {
        const f32v xb = f32v{} + xt[i * kKC + k];
        for (int v = 0; v < kNRV; ++v) acc[i][v] += xb * w[v];
      }
    }
    for (int i = 0; i < kMR; ++i)
      for (int v = 0; v < kNRV; ++v) pan[i][v] = k0 ? pan[i][v] + acc[i][v] : acc[i][v];
  }
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNRV; ++v) {
      f32v sum = pan[i][v];
      if (!first) {
        f32v old;
        memcpy(&old, c + i * kNC + v * kVec, sizeof(f32v));
        sum = old + sum;
      }
      memcpy(c + i * kNC + v * kVec, &sum, sizeof(f32v));
    }
}

// y[:, n_j] for the `count` rows n_j of W (rows[j], or j itself when rows is null), on exact values.
template <int FMT>
static void gemm_generic(const LinearArgs& a, const int64_t* rows, int64_t count) {
  parallel_ranges(count, kNC, a.num_threads, [&](int64_t j0, int64_t j1) {
    thread_local Scratch s_panel, s_x, s_y;
    const int64_t mb_rows = a.M < kMB ? a.M : kMB;
    float* P = s_panel.get<float>((size_t)kKC * kNC);
    float* xt = s_x.get<float>((size_t)kMR * kKC);
    float* yb = s_y.get<float>((size_t)(mb_rows + kMR) * kNC);
    for (int64_t nb = j0; nb < j1; nb += kNC) {
      const int ncols = (int)(j1 - nb < kNC ? j1 - nb : kNC);
      for (int64_t m0 = 0; m0 < a.M; m0 += kMB) {
        const int mrows = (int)(a.M - m0 < kMB ? a.M - m0 : kMB);
        if (a.K == 0) memset(yb, 0, sizeof(float) * (size_t)(mrows + kMR) * kNC);
        for (int64_t kb = 0; kb < a.K; kb += kKC) {
          const int kc = (int)(a.K - kb < kKC ? a.K - kb : kKC);
          decode_panel<FMT>(a, rows ? rows + nb : nullptr, nb, ncols, kb, kc, P);
          for (int m = 0; m < mrows; m += kMR) {
            for (int i = 0; i < kMR; ++i) {
              const int64_t mi = m0 + m + i;
              for (int k = 0; k < kc; ++k)
                xt[i * kKC + k] = m + i < mrows ? load_f32(a.x, a.x_dtype, mi * a.K + kb + k) : 0.0f;
            }
            for (int j = 0; j < ncols; j += kNR) micro_tile(xt, P + j, kc, yb + (size_t)m * kNC + j, kb == 0);
          }
        }
        for (int m = 0; m < mrows; ++m)
          for (int j = 0; j < ncols; ++j) {
            const int64_t n = rows ? rows[nb + j] : nb + j;
            const float b = a.bias ? load_f32(a.bias, a.bias_dtype, n) : 0.0f;
            store_y(a.y, a.x_dtype, (m0 + m) * a.N + n, yb[(size_t)m * kNC + j] + b);
          }
      }
    }
  });
}

}  // namespace

#if defined(__AVX512BW__)
}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
#include "csrc/mxgemm/mxgemm_avx512.h"
namespace slimops {
namespace mxgemm_cpu {
namespace SLIMOPS_ISA {
#endif

// ---------------------------------------------------------------------------- entry points
// (dispatched by SLIMOPS_MX_FORMAT_CASES, kernels/mx/mx_element.cuh)

template <int FMT>
static void linear_fmt(const LinearArgs& a) {
#if defined(__AVX512BW__)
  if (avx512::run<FMT>(a, [&](const int64_t* rows, int64_t count) { gemm_generic<FMT>(a, rows, count); })) return;
#endif
  gemm_generic<FMT>(a, nullptr, a.N);
}

void linear(const LinearArgs& a) {
  if (a.M == 0 || a.N == 0) return;
#define CALL(F) linear_fmt<F>(a)
  SLIMOPS_MX_FORMAT_CASES(a.fmt, CALL)
#undef CALL
}

const char* linear_path(const LinearArgs& a) {
#if defined(__AVX512BW__)
  const char* p = nullptr;
#define CALL(F) p = avx512::path<F>(a)
  SLIMOPS_MX_FORMAT_CASES(a.fmt, CALL)
#undef CALL
  if (p) return p;
#endif
  (void)a;
  return "generic";
}

}  // namespace SLIMOPS_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
