// Host launch code of the MX CUDA kernels (slimops._C_cuda, built by nvcc): the
// geometry, the FLAT-or-general choice, the grid, the launch and its error check.
// The kernels themselves (device code only, NVRTC-clean) are kernels/mx/mx_kernels.cuh;
// python/slimops/mx/nvrtc.py launches the same kernel bodies compiled by NVRTC and
// mirrors these choices.
#include <cuda_runtime.h>
#include <stdint.h>

#include "mx_cuda.h"
#include "mx_kernels.cuh"

namespace slimops {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------- host side

constexpr int64_t kMaxGrid = 1 << 30;  // CTAs at most (grid-stride beyond)

// Alignment (bytes) of the packed data that the FLAT path's vector accesses need.
constexpr int data_align(int bits) { return bits == 8 ? 16 : (bits == 4 ? 8 : 4); }

int log2_of(int v) {
  int l = 0;
  while ((1 << l) < v) ++l;
  return l;
}

Geometry geometry(int64_t rows, int64_t length, int block_size, int bits) {
  Geometry g;
  const int lanes = block_size / kChunk;
  const int64_t blocks_per_row = (length + block_size - 1) / block_size;
  g.length = length;
  g.chunks_per_row = blocks_per_row * lanes;
  g.units = rows * g.chunks_per_row;
  g.row_bytes = packed_bytes(bits, length);
  g.log2_lanes = log2_of(lanes);
  return g;
}

bool aligned(const void* p, int n) { return (reinterpret_cast<uintptr_t>(p) & (uintptr_t)(n - 1)) == 0; }

unsigned grid_for(int64_t threads) {
  int64_t blocks = (threads + kThreads - 1) / kThreads;
  return (unsigned)(blocks < kMaxGrid ? blocks : kMaxGrid);
}

template <int FMT, int DT, bool SR, bool FAKE>
cudaError_t launch_quantize(const QuantizeParams& p, bool flat, cudaStream_t stream) {
  const unsigned grid = grid_for(p.g.units);
  if (flat) mx_quantize_kernel<FMT, DT, SR, true, FAKE><<<grid, kThreads, 0, stream>>>(p);
  else mx_quantize_kernel<FMT, DT, SR, false, FAKE><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int FMT, int DT>
cudaError_t launch_dequantize(const DequantizeParams& p, bool flat, cudaStream_t stream) {
  const unsigned grid = grid_for(p.g.units);
  if (flat) mx_dequantize_kernel<FMT, DT, true><<<grid, kThreads, 0, stream>>>(p);
  else mx_dequantize_kernel<FMT, DT, false><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int FMT, bool FAKE>
cudaError_t quantize_by_dtype(const QuantizeParams& p, int dtype, bool sr, bool flat, cudaStream_t stream) {
  if (dtype == kF32) return sr ? launch_quantize<FMT, kF32, true, FAKE>(p, flat, stream)
                               : launch_quantize<FMT, kF32, false, FAKE>(p, flat, stream);
  if (dtype == kBF16) return sr ? launch_quantize<FMT, kBF16, true, FAKE>(p, flat, stream)
                                : launch_quantize<FMT, kBF16, false, FAKE>(p, flat, stream);
  return sr ? launch_quantize<FMT, kF16, true, FAKE>(p, flat, stream)
            : launch_quantize<FMT, kF16, false, FAKE>(p, flat, stream);
}

template <int FMT>
cudaError_t dequantize_by_dtype(const DequantizeParams& p, int dtype, bool flat, cudaStream_t stream) {
  if (dtype == kF32) return launch_dequantize<FMT, kF32>(p, flat, stream);
  if (dtype == kBF16) return launch_dequantize<FMT, kBF16>(p, flat, stream);
  return launch_dequantize<FMT, kF16>(p, flat, stream);
}

#define SLIMOPS_FORMAT_CASES(fmt, CALL)   \
  switch (fmt) {                          \
    case kFp8E4M3: return CALL(kFp8E4M3); \
    case kFp8E5M2: return CALL(kFp8E5M2); \
    case kFp6E3M2: return CALL(kFp6E3M2); \
    case kFp6E2M3: return CALL(kFp6E2M3); \
    case kFp4E2M1: return CALL(kFp4E2M1); \
    case kInt8: return CALL(kInt8);       \
    case kInt6: return CALL(kInt6);       \
    case kInt4: return CALL(kInt4);       \
    case kInt2: return CALL(kInt2);       \
    default: return cudaErrorInvalidValue; \
  }

template <bool FAKE>
cudaError_t run_quantize(const void* x, int dtype, int64_t rows, int64_t length, uint8_t* data, uint8_t* scales,
                         void* out, int fmt, int block_size, int scale_mode, bool stochastic, uint32_t seed,
                         cudaStream_t stream) {
  if (fmt < 0 || fmt >= kNumFormats || rows < 0 || length < 0) return cudaErrorInvalidValue;
  const int bits = format_of(fmt).bits;
  QuantizeParams p;
  p.x = x;
  p.data = data;
  p.scales = scales;
  p.out = out;
  p.g = geometry(rows, length, block_size, bits);
  p.scale_mode = scale_mode;
  p.key = mix32(seed);
  if (p.g.units == 0) return cudaSuccess;
  bool flat = length % block_size == 0 && aligned(x, 16);
  if (FAKE) flat = flat && aligned(out, 16);
  else flat = flat && aligned(data, data_align(bits));
#define CALL(F) quantize_by_dtype<F, FAKE>(p, dtype, stochastic, flat, stream)
  SLIMOPS_FORMAT_CASES(fmt, CALL)
#undef CALL
}

}  // namespace

cudaError_t quantize(const QuantizeArgs& a, cudaStream_t stream) {
  return run_quantize<false>(a.x, a.dtype, a.rows, a.length, a.data, a.scales, nullptr, a.fmt, a.block_size,
                             a.scale_mode, a.stochastic, a.seed, stream);
}

cudaError_t fake_quantize(const FakeQuantizeArgs& a, cudaStream_t stream) {
  return run_quantize<true>(a.x, a.dtype, a.rows, a.length, nullptr, nullptr, a.out, a.fmt, a.block_size,
                            a.scale_mode, a.stochastic, a.seed, stream);
}

cudaError_t dequantize(const DequantizeArgs& a, cudaStream_t stream) {
  if (a.fmt < 0 || a.fmt >= kNumFormats || a.rows < 0 || a.length < 0) return cudaErrorInvalidValue;
  const int bits = format_of(a.fmt).bits;
  DequantizeParams p;
  p.data = a.data;
  p.scales = a.scales;
  p.out = a.out;
  p.g = geometry(a.rows, a.length, a.block_size, bits);
  if (p.g.units == 0) return cudaSuccess;
  const bool flat = a.length % a.block_size == 0 && aligned(a.out, 16) &&
                    aligned(a.data, data_align(bits));
  const int fmt = a.fmt;
#define CALL(F) dequantize_by_dtype<F>(p, a.dtype, flat, stream)
  SLIMOPS_FORMAT_CASES(fmt, CALL)
#undef CALL
}

}  // namespace cuda
}  // namespace slimops
