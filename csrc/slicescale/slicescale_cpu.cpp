// Slice-and-Scale conversion (mx_convert) on the CPU, packed -> packed, on the canonical layout.
// Compiled once per instruction set (SLIMOPS_ISA = avx512, avx2, baseline); bind_slicescale.cpp
// picks one at run time.
//
// General path (every build, and every block the fast paths do not take): one MX block at a time,
// in chunks of 16 elements: unpack the source codes, re-encode 16 lanes at once through the shared
// element math (kernels/slicescale/slicescale_element.cuh on top of kernels/mx/mx_element.cuh:
// decode, scale by 2^-shift, nearest-even encode), OR the NaN/Inf flags of the block, pack.
//
// Fast paths (slicescale_simd.h, slicescale_vbmi.h, driven by slicescale_drive.h): the full blocks
// whose scale shifts by the pair's delta (no NaN scale, no clamp at 254), where the conversion of a
// code depends only on the code: AVX-512 VBMI (checked at run time: the avx512 build is x86-64-v4)
// looks every code up in a 256-entry table (made per pair and rounding by the same element
// function, with the report flags beside it); AVX2, and AVX-512 without VBMI, computes MXINT
// arithmetically and walks a 16-entry-register tree for MXFP. A block holding a NaN/Inf code goes
// back through the general path. SLIMOPS_CPU_VBMI=0 turns the VBMI path off (tests).
//
// The conversion report (ConvertArgs::counts) is counted on the way: per block, the fast paths OR
// the flags of a second table (or of the arithmetic), the general path those of element_report.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "csrc/common/first_touch.h"
#include "csrc/common/pack_avx2.h"
#include "csrc/common/parallel.h"
#include "csrc/slicescale/slicescale_cpu.h"
#include "kernels/slicescale/slicescale_element.cuh"

namespace slimops {
namespace slicescale_cpu {
namespace SLIMOPS_ISA {
namespace {

using namespace slimops::mx;
using namespace slimops::slicescale;

constexpr int kMaxBlock = 64;
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));

// Block counts of the conversion report, per thread.
struct Tally {
  int64_t n[kNumCounts] = {};
};

// One block of n <= block_size elements through the element math; returns the target scale byte and,
// with a tally, counts the block.
template <int SRC, int DST>
uint32_t convert_block(const uint8_t* in, uint8_t* out, int n, int block_size, uint32_t byte, bool truncate,
                       Tally* tally) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  constexpr int delta = s.emax - d.emax;
  const int chunks = (n + 15) / 16;
  alignas(64) uint8_t src_buf[kMaxBlock];
  alignas(64) uint8_t dst_buf[kMaxBlock];
  alignas(64) uint32_t codes[kMaxBlock];
  alignas(64) uint32_t res[kMaxBlock];
  const uint8_t* src = in;
  if (n != block_size) {  // partial last block: a zero-padded copy (code 0 converts to 0)
    memset(src_buf, 0, sizeof(src_buf));
    memcpy(src_buf, in, (size_t)packed_bytes(s.bits, n));
    src = src_buf;
  }
  uint8_t* dst = n == block_size ? out : dst_buf;
  uint32_t out_byte = convert_scale_byte(byte, delta);
  bool bad = byte == kE8M0NaN;
  const float inv = exp2i((int)byte - (int)out_byte);
  if (!bad) {
    u32x16 special = {};
    for (int c = 0; c < chunks; ++c) {
      unpack16<s.bits>(src + c * 2 * s.bits, codes + 16 * c);
      if (!truncate) {
        u32x16 v;
        memcpy(&v, codes + 16 * c, sizeof(v));
        const u32x16 r = convert_lanes<u32x16, f32x16>(v, s, d, inv, special);
        memcpy(res + 16 * c, &r, sizeof(r));
      } else {
        for (int i = 0; i < 16; ++i) {
          bool sp;
          res[16 * c + i] = convert_element(codes[16 * c + i], s, d, inv, true, sp);
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
    for (int i = 0; i < chunks * 16; ++i) res[i] = i < n ? (uint32_t)d.max_code : 0u;
  }
  if (tally) {
    if (bad) {
      ++tally->n[kNanBlocks];
    } else {
      uint32_t f = 0;
      for (int i = 0; i < n; ++i) f |= element_report(codes[i], res[i], s, d, inv);
      tally->n[kLossless] += !(f & kInexact);
      tally->n[kSaturatedBlocks] += (f & kSaturated) != 0;
      tally->n[kFlushedBlocks] += (f & kFlushed) != 0;
      tally->n[kScaleClamped] += out_byte != byte + (uint32_t)delta;
    }
  }
  for (int c = 0; c < chunks; ++c) pack16<d.bits>(res + 16 * c, dst + c * 2 * d.bits);
  if (n != block_size) memcpy(out, dst_buf, (size_t)packed_bytes(d.bits, n));
  return out_byte;
}

// Blocks [b0, b1) of the (rows x nblocks) grid through convert_block alone (the baseline build).
template <int SRC, int DST>
void general_range(const ConvertArgs& a, int64_t b0, int64_t b1, Tally* tally) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  const int64_t L = a.length, bs = a.block_size, nblocks = (L + bs - 1) / bs;
  const int64_t src_row = packed_bytes(s.bits, L), dst_row = packed_bytes(d.bits, L);
  int64_t row = b0 / nblocks, k = b0 - row * nblocks;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t start = k * bs;
    a.out_scales[b] = (uint8_t)convert_block<SRC, DST>(
        a.data + row * src_row + start * s.bits / 8, a.out_data + row * dst_row + start * d.bits / 8,
        (int)(L - start < bs ? L - start : bs), (int)bs, a.scales[b], a.truncate, tally);
    if (++k == nblocks) {
      k = 0;
      ++row;
    }
  }
}

// Bit masks of one chunk of a fast path: NaN/Inf source codes (a bit per element), and the report flags
// (a bit per element, or per block where the kernel says kBlockFlags).
struct Masks {
  uint64_t special = 0, inexact = 0, saturated = 0, flushed = 0;
};

// The conversion of every source code at the unclamped shift 2^-delta: the target code, | 0x80 for a
// NaN/Inf source code, and its report flags (none for NaN/Inf). Entries repeat with the source's
// code width, so that the lookups of 6- and 4-bit codes may ignore the bits above the code.
struct Tables {
  alignas(64) uint8_t code[256];
  alignas(64) uint8_t flags[256];
  // One lookup for the code and the report flags (| 0x80 for a special code): a target of at most 4 bits,
  // code | flags << 4; a 6-bit target, code | (inexact, saturated) << 5 (flushed then comes from the codes).
  alignas(64) uint8_t code_flags[256];
};

template <int SRC, int DST>
Tables make_tables(bool truncate) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  const float inv = exp2i(-(s.emax - d.emax));
  Tables t;
  for (uint32_t i = 0; i < 256; ++i) {
    const uint32_t c = i & ((1u << s.bits) - 1u);
    bool sp;
    const uint32_t code = convert_element(c, s, d, inv, truncate, sp);
    t.code[i] = (uint8_t)(code | (sp ? 0x80u : 0u));
    t.flags[i] = (uint8_t)(sp ? 0u : element_report(c, code, s, d, inv));
    t.code_flags[i] = (uint8_t)(d.bits <= 4   ? t.code[i] | t.flags[i] << 4
                                : d.bits == 6 ? t.code[i] | (t.flags[i] & (kInexact | kSaturated)) << 5
                                              : 0u);
  }
  return t;
}

template <int SRC, int DST>
const Tables& tables(bool truncate) {
  static const Tables t[2] = {make_tables<SRC, DST>(false), make_tables<SRC, DST>(true)};
  return t[truncate ? 1 : 0];
}

#if defined(__AVX2__)
namespace simd {
#include "csrc/slicescale/slicescale_drive.h"
#include "csrc/slicescale/slicescale_simd.h"
}  // namespace simd
#endif

#if defined(__AVX512BW__)
#pragma GCC push_options
#pragma GCC target("avx512vbmi")
namespace vbmi {
#include "csrc/slicescale/slicescale_drive.h"
#include "csrc/slicescale/slicescale_vbmi.h"

template <int SRC, int DST, bool REPORT>
void convert_range(const ConvertArgs& a, const Tables& tab, int64_t b0, int64_t b1, Tally* tally) {
  const VbmiChunk<SRC, DST, REPORT> kern(tab);
  vbmi::drive_range<SRC, DST, REPORT>(kern, a, b0, b1, tally);
}
}  // namespace vbmi
#pragma GCC pop_options

bool vbmi_on() {
  static const bool on = [] {
    __builtin_cpu_init();
    const char* env = getenv("SLIMOPS_CPU_VBMI");
    return __builtin_cpu_supports("avx512vbmi") && !(env && env[0] == '0');
  }();
  return on;
}
#endif

template <bool REPORT>
struct ConvertRows {
  const ConvertArgs& a;
  int64_t* totals;
  template <int SRC, int DST>
  void operator()() const {
    const int64_t nblocks = (a.length + a.block_size - 1) / a.block_size;
    const ConvertArgs& args = a;
    int64_t* out = totals;
#if defined(__AVX2__)
    const Tables& tab = tables<SRC, DST>(a.truncate);
#endif
    slimops::parallel_ranges(a.rows * nblocks, 1024, a.num_threads, [&](int64_t b0, int64_t b1) {
      Tally tally;
#if defined(__AVX512BW__)
      if (vbmi_on())
        vbmi::convert_range<SRC, DST, REPORT>(args, tab, b0, b1, &tally);
      else
#endif
#if defined(__AVX2__)
        simd::drive_range<SRC, DST, REPORT>(simd::Avx2Chunk<SRC, DST, REPORT>(tab, args.truncate), args, b0, b1,
                                            &tally);
#else
        general_range<SRC, DST>(args, b0, b1, REPORT ? &tally : nullptr);
#endif
      if (REPORT)
        for (int i = 0; i < kNumCounts; ++i) __atomic_fetch_add(&out[i], tally.n[i], __ATOMIC_RELAXED);
    });
  }
};

}  // namespace

void convert(const ConvertArgs& a) {
  if (a.counts)
    for (int i = 0; i < kNumCounts; ++i) a.counts[i] = 0;
  if (a.rows == 0 || a.length == 0) return;
  // SLIMOPS_HUGE_PAGES=1: huge pages for a large fresh output (csrc/common/first_touch.h), as the MX kernels.
  slimops::prefer_huge_pages(a.out_data, (size_t)(a.rows * packed_bytes(format_of(a.dst).bits, a.length)));
  if (a.counts)
    slimops::slicescale::dispatch_pair(a.src, a.dst, ConvertRows<true>{a, a.counts});
  else
    slimops::slicescale::dispatch_pair(a.src, a.dst, ConvertRows<false>{a, nullptr});
}

const char* path() {
#if defined(__AVX512BW__)
  return vbmi_on() ? "avx512-vbmi" : "avx512";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "baseline";
#endif
}

}  // namespace SLIMOPS_ISA
}  // namespace slicescale_cpu
}  // namespace slimops
