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
//
// Fast path (AVX2 and AVX-512 builds, 8-bit sources, full blocks whose scale does not clamp):
// the conversion of a code depends only on the code, so a 256-entry table per call
// (target code | 0x80 for NaN/Inf source codes, made by the same element function) is
// looked up 32 bytes at a time with 16 pshufb (one per high nibble); a block with a
// flagged code, a NaN scale or a clamped scale takes the general path above.
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "csrc/common/parallel.h"
#include "csrc/slicescale/slicescale_cpu.h"
#include "kernels/slicescale/slicescale_element.cuh"

namespace slimops {
namespace slicescale_cpu {
namespace SLIMOPS_ISA {
namespace {

using namespace slimops::mx;
using slimops::slicescale::convert_element;
using slimops::slicescale::convert_lanes;
using slimops::slicescale::convert_scale_byte;
using slimops::mx::pack16;
using slimops::mx::unpack16;

constexpr int kMaxBlock = 64;
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));

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

#if defined(__AVX2__)
// The 256-entry table as 16 registers: t[h] holds entries h*16 .. h*16+15 in both 128-bit lanes.
struct Lut256 {
  __m256i t[16];
};

template <int SRC, int DST>
Lut256 make_lut(bool truncate) {
  constexpr Format s = format_of(SRC), d = format_of(DST);
  alignas(32) uint8_t tab[256];
  const float inv = exp2i(-(s.emax - d.emax));
  for (uint32_t c = 0; c < 256; ++c) {
    bool sp;
    const uint32_t code = convert_element(c, s, d, inv, truncate, sp);
    tab[c] = (uint8_t)(code | (sp ? 0x80u : 0u));
  }
  Lut256 l;
  for (int h = 0; h < 16; ++h)
    l.t[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(tab + 16 * h)));
  return l;
}

static inline __m256i lookup32(const Lut256& l, __m256i x) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(x, nib);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
  __m256i r = _mm256_setzero_si256();
  for (int h = 0; h < 16; ++h) {
    const __m256i m = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)h));
    r = _mm256_or_si256(r, _mm256_and_si256(m, _mm256_shuffle_epi8(l.t[h], lo)));
  }
  return r;
}

// One full block of an 8-bit source (block_size a multiple of 32) through the table; false
// (nothing written) when a code is flagged, so that the caller takes the general path.
template <int DBITS>
static inline bool lut_block(const Lut256& l, const uint8_t* in, uint8_t* out, int block_size) {
  __m256i r[2];
  const int regs = block_size / 32;
  int flags = 0;
  for (int i = 0; i < regs; ++i) {
    r[i] = lookup32(l, _mm256_loadu_si256((const __m256i*)(in + 32 * i)));
    flags |= _mm256_movemask_epi8(r[i]);
  }
  if (flags) return false;
  for (int i = 0; i < regs; ++i) {
    if (DBITS == 4) {  // bytes (even, odd) of each 16-bit lane -> even | odd << 4
      const __m256i w = _mm256_or_si256(_mm256_and_si256(r[i], _mm256_set1_epi16(0x00FF)),
                                        _mm256_and_si256(_mm256_srli_epi16(r[i], 4), _mm256_set1_epi16(0x0FF0)));
      const __m256i p = _mm256_packus_epi16(w, w);  // per 128-bit lane: 8 bytes, twice
      const __m256i q = _mm256_permute4x64_epi64(p, 0x08);  // qwords 0 and 2
      _mm_storeu_si128((__m128i*)(out + 16 * i), _mm256_castsi256_si128(q));
    } else if (DBITS == 6) {  // each dword (c0, c1, c2, c3) -> 24 bits, 3 bytes of it kept per dword
      const __m256i x = r[i];
      const __m256i w = _mm256_or_si256(
          _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0x3F)),
                          _mm256_and_si256(_mm256_srli_epi32(x, 2), _mm256_set1_epi32(0xFC0))),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(x, 4), _mm256_set1_epi32(0x3F000)),
                          _mm256_and_si256(_mm256_srli_epi32(x, 6), _mm256_set1_epi32(0xFC0000))));
      const __m256i idx = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                           0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
      alignas(32) uint8_t b[32];
      _mm256_store_si256((__m256i*)b, _mm256_shuffle_epi8(w, idx));
      memcpy(out + 24 * i, b, 12);
      memcpy(out + 24 * i + 12, b + 16, 12);
    } else {  // 2 bits: each dword (c0, c1, c2, c3) -> one byte
      const __m256i x = r[i];
      const __m256i w = _mm256_or_si256(
          _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(0x3)),
                          _mm256_and_si256(_mm256_srli_epi32(x, 6), _mm256_set1_epi32(0xC))),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(x, 12), _mm256_set1_epi32(0x30)),
                          _mm256_and_si256(_mm256_srli_epi32(x, 18), _mm256_set1_epi32(0xC0))));
      const __m256i idx = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
      const __m256i p = _mm256_shuffle_epi8(w, idx);
      const uint32_t lo = (uint32_t)_mm256_extract_epi32(p, 0), hi = (uint32_t)_mm256_extract_epi32(p, 4);
      memcpy(out + 8 * i, &lo, 4);
      memcpy(out + 8 * i + 4, &hi, 4);
    }
  }
  return true;
}
#endif

struct ConvertRows {
  const ConvertArgs& a;
  template <int SRC, int DST>
  void operator()() const {
    constexpr Format s = format_of(SRC), d = format_of(DST);
    const int64_t L = a.length, bs = a.block_size;
    const int64_t nblocks = (L + bs - 1) / bs;
    const int64_t src_row = packed_bytes(s.bits, L), dst_row = packed_bytes(d.bits, L);
    const ConvertArgs& args = a;
#if defined(__AVX2__)
    constexpr bool kLut = s.bits == 8;
    const bool use_lut = kLut && bs % 32 == 0;
    const Lut256 lut = use_lut ? make_lut<SRC, DST>(a.truncate) : Lut256{};
#endif
    slimops::parallel_ranges(a.rows * nblocks, 1024, a.num_threads, [&](int64_t b0, int64_t b1) {
      int64_t row = b0 / nblocks, k = b0 - row * nblocks;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t start = k * bs;
        const int n = (int)(L - start < bs ? L - start : bs);
#if defined(__AVX2__)
        const uint32_t byte = args.scales[b];
        if (use_lut && n == bs && byte + (uint32_t)(s.emax - d.emax) <= 254u &&
            lut_block<d.bits>(lut, args.data + row * src_row + start, args.out_data + row * dst_row + start * d.bits / 8,
                              (int)bs)) {
          args.out_scales[b] = (uint8_t)(byte + (uint32_t)(s.emax - d.emax));
          if (++k == nblocks) {
            k = 0;
            ++row;
          }
          continue;
        }
#endif
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
}  // namespace slicescale_cpu
}  // namespace slimops
