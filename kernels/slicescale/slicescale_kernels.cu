// Slice-and-Scale conversion (mx_convert) in CUDA, packed -> packed, canonical layout:
// source data (rows, ceil(L * bits_src / 8)), scales (rows, ceil(L / block_size)), the
// target the same. The element math is kernels/slicescale/slicescale_element.cuh (on
// top of kernels/mx_element.cuh), shared with the CPU kernel; this file only moves bytes.
//
// Work split: one thread per MX block (16, 32 or 64 elements; a block's packed bytes are
// contiguous and start on a byte boundary, 2 * bits bytes per 16 elements), grid-stride.
// Consecutive threads take consecutive blocks, so a warp reads and writes contiguous runs.
// Not tuned (no vector loads, no shared-memory staging). With ConvertArgs::counts, each thread
// also ORs the report flags of its block (element_report) and each warp adds its blocks to the
// counts with one atomic per count (the caller zeroes them).
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/slicescale/slicescale_cuda.h"
#include "kernels/slicescale/slicescale_element.cuh"

namespace slimops {
namespace slicescale_cuda {
namespace {

using namespace slimops::mx;
using namespace slimops::slicescale;

constexpr int kThreads = 256;
constexpr int64_t kMaxGrid = 1 << 20;

template <int SRC, int DST, bool TRUNC>
__global__ void __launch_bounds__(kThreads) convert_kernel(const uint8_t* __restrict__ data,
                                                           const uint8_t* __restrict__ scales, int64_t rows,
                                                           int64_t length, int block_size,
                                                           uint8_t* __restrict__ out_data,
                                                           uint8_t* __restrict__ out_scales,
                                                           unsigned long long* __restrict__ counts) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  constexpr int delta = s.emax - d.emax;
  const int64_t nblocks = (length + block_size - 1) / block_size;
  const int64_t total = rows * nblocks;
  const int64_t src_row = packed_bytes(s.bits, length), dst_row = packed_bytes(d.bits, length);
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < total; b += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = b / nblocks, k = b - row * nblocks;
    const int64_t start = k * block_size;
    const int n = (int)(length - start < block_size ? length - start : block_size);
    const uint8_t* in = data + row * src_row + start * s.bits / 8;
    uint8_t* out = out_data + row * dst_row + start * d.bits / 8;
    const uint32_t byte = scales[b];
    uint32_t out_byte = convert_scale_byte(byte, delta);
    const float inv = exp2i((int)byte - (int)out_byte);
    const int chunks = (n + 15) / 16;
    uint32_t codes[64];
    bool bad = byte == kE8M0NaN;
    uint32_t flags = 0;
    for (int c = 0; c < chunks; ++c) {
      uint8_t buf[16];
      const int nb = 2 * s.bits;
      const int64_t have = packed_bytes(s.bits, n) - c * nb;  // bytes of this chunk inside the block
      for (int i = 0; i < nb; ++i) buf[i] = i < have ? in[c * nb + i] : 0;
      unpack16<s.bits>(buf, codes + 16 * c);
      for (int i = 0; i < 16; ++i) {
        bool sp;
        const uint32_t code = codes[16 * c + i];
        codes[16 * c + i] = convert_element(code, s, d, inv, TRUNC, sp);
        if (counts) flags |= element_report(code, codes[16 * c + i], s, d, inv);  // padding: code 0, no flags
        bad |= sp;
      }
    }
    if (counts) {  // the report: one atomic per warp and count
      const bool keep = !bad;
      const uint32_t v[kNumCounts] = {keep && !(flags & kInexact), keep && out_byte != byte + (uint32_t)delta, bad,
                                      keep && (flags & kSaturated), keep && (flags & kFlushed)};
      const unsigned active = __activemask();
      const int leader = __ffs(active) - 1;
      for (int i = 0; i < kNumCounts; ++i) {
        const unsigned ballot = __ballot_sync(active, v[i] != 0);
        if ((int)(threadIdx.x & 31) == leader && ballot) atomicAdd(counts + i, (unsigned long long)__popc(ballot));
      }
    }
    if (bad) {
      out_byte = kE8M0NaN;
      for (int i = 0; i < chunks * 16; ++i) codes[i] = i < n ? (uint32_t)d.max_code : 0u;
    }
    const int64_t out_bytes = packed_bytes(d.bits, n);
    for (int c = 0; c < chunks; ++c) {
      uint8_t buf[16];
      const int nb = 2 * d.bits;
      pack16<d.bits>(codes + 16 * c, buf);
      for (int i = 0; i < nb; ++i)
        if (c * nb + i < out_bytes) out[c * nb + i] = buf[i];
    }
    out_scales[b] = (uint8_t)out_byte;
  }
}

struct Launch {
  const ConvertArgs& a;
  cudaStream_t stream;
  template <int SRC, int DST>
  void operator()() const {
    const int64_t nblocks = (a.length + a.block_size - 1) / a.block_size;
    const int64_t total = a.rows * nblocks;
    int64_t grid = (total + kThreads - 1) / kThreads;
    grid = grid < kMaxGrid ? grid : kMaxGrid;
    if (a.truncate)
      convert_kernel<SRC, DST, true><<<(unsigned)grid, kThreads, 0, stream>>>(
          a.data, a.scales, a.rows, a.length, a.block_size, a.out_data, a.out_scales,
          (unsigned long long*)a.counts);
    else
      convert_kernel<SRC, DST, false><<<(unsigned)grid, kThreads, 0, stream>>>(
          a.data, a.scales, a.rows, a.length, a.block_size, a.out_data, a.out_scales,
          (unsigned long long*)a.counts);
  }
};

}  // namespace

cudaError_t convert(const ConvertArgs& a, cudaStream_t stream) {
  if (a.rows == 0 || a.length == 0) return cudaSuccess;
  if (!dispatch_pair(a.src, a.dst, Launch{a, stream})) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace slicescale_cuda
}  // namespace slimops
