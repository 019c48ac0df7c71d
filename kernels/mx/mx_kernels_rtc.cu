// NVRTC entry points of the MX CUDA kernels: extern "C" kernels with plain names
// around the kernel bodies of mx_kernels.cuh (the ones slimops._C_cuda's templates
// run), compiled at first use by python/slimops/mx/nvrtc.py through CuPy. Device code
// only: nothing here, nor in what it includes, needs a host header under NVRTC.
//
// Names, one kernel per instantiation:
//   slimops_mx_quantize_<fmt>_<dtype>_<rne|sr>_<flat|general>
//   slimops_mx_fake_quantize_<fmt>_<dtype>_<rne|sr>_<flat|general>
//   slimops_mx_dequantize_<fmt>_<dtype>_<flat|general>
// fmt: fp8_e4m3 fp8_e5m2 fp6_e3m2 fp6_e2m3 fp4_e2m1 int8 int6 int4 int2; dtype: f32
// bf16 f16 (x's, or dequantize's output). The arguments are the fields of
// QuantizeParams / DequantizeParams (mx_kernels.cuh), as scalars; launch with
// kThreads (256) threads per CTA, grid min(ceil(units / 256), 2^30), as
// mx_kernels.cu does.
//
// Compiled as it is, this file defines every entry point (270). nvrtc.py defines
// SLIMOPS_MX_RTC_SELECT and appends one SLIMOPS_MX_RTC_ENTRIES line for the format
// and dtype it needs, so that a first call compiles 10 kernels, not 270.
#include "mx_kernels.cuh"

#define SLIMOPS_MX_RTC_QUANTIZE(NAME, FMT, DT, SR, FLAT, FAKE)                                                  \
  extern "C" __global__ void __launch_bounds__(slimops::cuda::kThreads)                                        \
      NAME(const void* x, uint8_t* data, uint8_t* scales, void* out, int64_t length, int64_t units,            \
           int64_t chunks_per_row, int64_t row_bytes, int log2_lanes, int scale_mode, uint32_t key) {          \
    slimops::cuda::QuantizeParams p;                                                                            \
    p.x = x;                                                                                                    \
    p.data = data;                                                                                              \
    p.scales = scales;                                                                                          \
    p.out = out;                                                                                                \
    p.g.length = length;                                                                                        \
    p.g.units = units;                                                                                          \
    p.g.chunks_per_row = chunks_per_row;                                                                        \
    p.g.row_bytes = row_bytes;                                                                                  \
    p.g.log2_lanes = log2_lanes;                                                                                \
    p.scale_mode = scale_mode;                                                                                  \
    p.key = key;                                                                                                \
    slimops::cuda::mx_quantize_body<FMT, DT, SR, FLAT, FAKE>(p);                                                \
  }

#define SLIMOPS_MX_RTC_DEQUANTIZE(NAME, FMT, DT, FLAT)                                                          \
  extern "C" __global__ void __launch_bounds__(slimops::cuda::kThreads)                                        \
      NAME(const uint8_t* data, const uint8_t* scales, void* out, int64_t length, int64_t units,               \
           int64_t chunks_per_row, int64_t row_bytes, int log2_lanes) {                                         \
    slimops::cuda::DequantizeParams p;                                                                          \
    p.data = data;                                                                                              \
    p.scales = scales;                                                                                          \
    p.out = out;                                                                                                \
    p.g.length = length;                                                                                        \
    p.g.units = units;                                                                                          \
    p.g.chunks_per_row = chunks_per_row;                                                                        \
    p.g.row_bytes = row_bytes;                                                                                  \
    p.g.log2_lanes = log2_lanes;                                                                                \
    slimops::cuda::mx_dequantize_body<FMT, DT, FLAT>(p);                                                        \
  }

// The 10 entry points of one format (FMT: its id, FN: its name) and dtype (DT, DN).
#define SLIMOPS_MX_RTC_ENTRIES(FN, FMT, DN, DT)                                                                \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_quantize_##FN##_##DN##_rne_flat, FMT, DT, false, true, false)             \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_quantize_##FN##_##DN##_rne_general, FMT, DT, false, false, false)         \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_quantize_##FN##_##DN##_sr_flat, FMT, DT, true, true, false)               \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_quantize_##FN##_##DN##_sr_general, FMT, DT, true, false, false)           \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_fake_quantize_##FN##_##DN##_rne_flat, FMT, DT, false, true, true)         \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_fake_quantize_##FN##_##DN##_rne_general, FMT, DT, false, false, true)     \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_fake_quantize_##FN##_##DN##_sr_flat, FMT, DT, true, true, true)           \
  SLIMOPS_MX_RTC_QUANTIZE(slimops_mx_fake_quantize_##FN##_##DN##_sr_general, FMT, DT, true, false, true)       \
  SLIMOPS_MX_RTC_DEQUANTIZE(slimops_mx_dequantize_##FN##_##DN##_flat, FMT, DT, true)                           \
  SLIMOPS_MX_RTC_DEQUANTIZE(slimops_mx_dequantize_##FN##_##DN##_general, FMT, DT, false)

#define SLIMOPS_MX_RTC_DTYPES(FN, FMT)               \
  SLIMOPS_MX_RTC_ENTRIES(FN, FMT, f32, slimops::kF32)   \
  SLIMOPS_MX_RTC_ENTRIES(FN, FMT, bf16, slimops::kBF16) \
  SLIMOPS_MX_RTC_ENTRIES(FN, FMT, f16, slimops::kF16)

#if !defined(SLIMOPS_MX_RTC_SELECT)
SLIMOPS_MX_RTC_DTYPES(fp8_e4m3, slimops::mx::kFp8E4M3)
SLIMOPS_MX_RTC_DTYPES(fp8_e5m2, slimops::mx::kFp8E5M2)
SLIMOPS_MX_RTC_DTYPES(fp6_e3m2, slimops::mx::kFp6E3M2)
SLIMOPS_MX_RTC_DTYPES(fp6_e2m3, slimops::mx::kFp6E2M3)
SLIMOPS_MX_RTC_DTYPES(fp4_e2m1, slimops::mx::kFp4E2M1)
SLIMOPS_MX_RTC_DTYPES(int8, slimops::mx::kInt8)
SLIMOPS_MX_RTC_DTYPES(int6, slimops::mx::kInt6)
SLIMOPS_MX_RTC_DTYPES(int4, slimops::mx::kInt4)
SLIMOPS_MX_RTC_DTYPES(int2, slimops::mx::kInt2)
#endif
