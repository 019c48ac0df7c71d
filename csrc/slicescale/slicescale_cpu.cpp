// Slice-and-Scale conversion (mx_convert) on the CPU, packed -> packed, on the
// canonical layout. Compiled once per instruction set (SLIMOPS_ISA = avx512, avx2,
// baseline); bind_slicescale.cpp picks one at run time.
//
// One MX block at a time, in chunks of 16 elements: unpack the source codes, re-encode
// 16 lanes at once through the shared element math (kernels/slicescale/
// slicescale_element.cuh on top of kernels/mx_element.cuh: decode, scale by 2^-shift,
// nearest-even encode), OR the NaN/Inf flags of the block, pack. Nothing larger than a
// block is ever held in registers or buffers. Format parameters are template
// arguments, so every loop has compile-time trip counts and vectorises.
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "slicescale_cpu.h"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {
namespace {

using namespace slimops::mx;
using slimops::slicescale::convert_element;
using slimops::slicescale::convert_lanes;
using slimops::slicescale::convert_scale_byte;
using slimops::slicescale::pack16;
using slimops::slicescale::unpack16;

constexpr int kMaxBlock = 64;
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));

// Split [0, total) over at most num_threads threads in contiguous ranges of at least
// min_per_thread items: fn(begin, end) on each.
template <class Fn>
void parallel_ranges(int64_t total, int64_t min_per_thread, int num_threads, Fn fn) {
  const int64_t want = total / min_per_thread + 1;
  const int threads = (int)(want < num_threads ? want : num_threads);
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    const int64_t b = total * t / nt, e = total * (t + 1) / nt;
    if (b < e) fn(b, e);
  }
}

// One block of n <= block_size elements; returns the target scale byte.
template <int SRC, int DST>
inline uint32_t convert_block(const uint8_t* in, uint8_t* out, int n, int block_size, uint32_t byte, bool truncate) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  constexpr int delta = s.emax - d.emax;
  const int chunks = (n + 15) / 16;
  alignas(64) uint8_t src_buf[kMaxBlock];
  alignas(64) uint8_t dst_buf[kMaxBlock];
  alignas(64) uint32_t codes[kMaxBlock];
  const uint8_t* src = in;
  if (n != block_size) {  // partial last block: a zero-padded copy (code 0 converts to 0)
    memset(src_buf, 0, sizeof(src_buf));
    memcpy(src_buf, in, (size_t)packed_bytes(s.bits, n));
    src = src_buf;
  }
  uint8_t* dst = n == block_size ? out : dst_buf;
  uint32_t out_byte = convert_scale_byte(byte, delta);
  bool bad = byte == kE8M0NaN;
  if (!bad) {
    const float inv = exp2i((int)byte - (int)out_byte);
    u32x16 special = {};
    for (int c = 0; c < chunks; ++c) {
      unpack16<s.bits>(src + c * 2 * s.bits, codes + 16 * c);
      if (!truncate) {
        u32x16 v;
        memcpy(&v, codes + 16 * c, sizeof(v));
        const u32x16 r = convert_lanes<u32x16, f32x16>(v, s, d, inv, special);
        memcpy(codes + 16 * c, &r, sizeof(r));
      } else {
        for (int i = 0; i < 16; ++i) {
          bool sp;
          codes[16 * c + i] = convert_element(codes[16 * c + i], s, d, inv, true, sp);
          special[i] |= sp ? 1u : 0u;
        }
      }
    }
    uint32_t any = 0;
    for (int i = 0; i < 16; ++i) any |= special[i];
    bad = any != 0;
  }
  if (bad) {  // NaN block: 0xFF and the positive max code (padding lanes stay 0)
    out_byte = kE8M0NaN;
    for (int i = 0; i < chunks * 16; ++i) codes[i] = i < n ? (uint32_t)d.max_code : 0u;
  }
  for (int c = 0; c < chunks; ++c) pack16<d.bits>(codes + 16 * c, dst + c * 2 * d.bits);
  if (n != block_size) memcpy(out, dst_buf, (size_t)packed_bytes(d.bits, n));
  return out_byte;
}

struct ConvertRows {
  const ConvertArgs& a;
  template <int SRC, int DST>
  void operator()() const {
    constexpr Format s = format_of(SRC), d = format_of(DST);
    const int64_t L = a.length, bs = a.block_size;
    const int64_t nblocks = (L + bs - 1) / bs;
    const int64_t src_row = packed_bytes(s.bits, L), dst_row = packed_bytes(d.bits, L);
    const ConvertArgs& args = a;
    parallel_ranges(a.rows * nblocks, 1024, a.num_threads, [&](int64_t b0, int64_t b1) {
      int64_t row = b0 / nblocks, k = b0 - row * nblocks;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t start = k * bs;
        const int n = (int)(L - start < bs ? L - start : bs);
        args.out_scales[b] = (uint8_t)convert_block<SRC, DST>(
            args.data + row * src_row + start * s.bits / 8, args.out_data + row * dst_row + start * d.bits / 8, n,
            (int)bs, args.scales[b], args.truncate);
        if (++k == nblocks) {
          k = 0;
          ++row;
        }
      }
    });
  }
};

}  // namespace

void convert(const ConvertArgs& a) {
  if (a.rows == 0 || a.length == 0) return;
  slimops::slicescale::dispatch_pair(a.src, a.dst, ConvertRows{a});
}

}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
