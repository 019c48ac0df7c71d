// Slice-and-Scale element math, shared by the C++ CPU kernels and the CUDA kernels:
// the new E8M0 scale of a block and the re-encoding of one element code (or 16 lanes
// of them) from a source MX format into a lower one. Built on the MX element header
// (decode_lanes, encode_magnitude_rne / _sr), so conversion rounds exactly as
// mx_quantize does. The reference is python/slimops/slicescale/reference.py.
//
//   delta      = emax_src - emax_dst                 (0 between MXINT formats)
//   byte_dst   = byte_src == 0xFF ? 0xFF : min(byte_src + delta, 254)
//   shift      = byte_dst - byte_src                 (delta unless clamped)
//   element    = encode_dst(decode_src(code) * 2^-shift), nearest even or toward zero
//   a block that is NaN or holds a NaN/Inf source code -> 0xFF, every element +max code
#pragma once

#include <stdint.h>

#include "kernels/mx/mx_element.cuh"

namespace slimops {
namespace slicescale {

using mx::Format;

// Whether src -> dst is a supported conversion (same family, fewer bits), or the identity.
MX_HD bool pair_supported(int src, int dst) {
  if (src < 0 || src > 8 || dst < 0 || dst > 8) return false;
  const Format s = mx::format_of(src), d = mx::format_of(dst);
  return src == dst || (s.is_int == d.is_int && d.bits < s.bits);
}

MX_HD int delta_of(const Format& s, const Format& d) { return s.emax - d.emax; }

MX_HD uint32_t convert_scale_byte(uint32_t byte, int delta) {
  const uint32_t b = byte + (uint32_t)delta;
  return byte == mx::kE8M0NaN ? mx::kE8M0NaN : (b > 254u ? 254u : b);
}

// One element: source code -> target code; `special` is set for NaN/Inf source codes.
// inv = 2^-shift. truncate: toward zero (the stochastic encoder with zero random bits).
MX_HD uint32_t convert_element(uint32_t code, const Format& s, const Format& d, float inv, bool truncate,
                               bool& special) {
  const float v = mx::decode_element(code, s);
  const uint32_t vb = f32_bits(v);
  special = (vb & 0x7FFFFFFFu) >= 0x7F800000u;
  const uint32_t a = f32_bits(v * inv) & 0x7FFFFFFFu;
  const uint32_t mag = truncate ? mx::encode_magnitude_sr(a, d, 0u) : mx::encode_magnitude_rne<uint32_t, float>(a, d);
  const uint32_t sign = vb >> 31;
  const uint32_t mask = (1u << d.bits) - 1u;
  return d.is_int ? ((sign ? 0u - mag : mag) & mask) : (mag | (sign << (d.bits - 1)));
}

// The conversion report (ConversionReport): per element, whether its value changed (kInexact),
// whether |value| was above the target's max (kSaturated) and whether a nonzero value became zero
// (kFlushed); per block, the counts below. v = decode(code) * 2^-shift and t = decode(out_code) are
// exact in fp32, so "value kept" is t == v. Special (NaN/Inf) source codes get no flags: their
// block becomes a NaN block, counted as such.
enum ReportFlag : uint32_t { kInexact = 1, kSaturated = 2, kFlushed = 4 };
enum ReportCount : int { kLossless = 0, kScaleClamped = 1, kNanBlocks = 2, kSaturatedBlocks = 3, kFlushedBlocks = 4,
                         kNumCounts = 5 };

MX_HD uint32_t element_report(uint32_t code, uint32_t out_code, const Format& s, const Format& d, float inv) {
  const float v = mx::decode_element(code, s) * inv;
  const float t = mx::decode_element(out_code, d);
  if (!(v == v) || (f32_bits(v) & 0x7FFFFFFFu) == 0x7F800000u) return 0u;
  const float av = v < 0.0f ? -v : v;
  return (t != v ? (uint32_t)kInexact : 0u) | (av > d.max_value ? (uint32_t)kSaturated : 0u) |
         (v != 0.0f && t == 0.0f ? (uint32_t)kFlushed : 0u);
}

// The same on lanes (U: uint32_t or a vector of them, F the matching float type),
// nearest even; special lanes get all ones in `special` (OR-accumulated).
template <class U, class F>
MX_HD U convert_lanes(U code, const Format& s, const Format& d, float inv, U& special) {
  const F v = mx::decode_lanes<U, F>(code, s);
  const U vb = bitcast<U>(v);
  special |= (U)((vb & 0x7FFFFFFFu) >= 0x7F800000u);
  const U mag = mx::encode_magnitude_rne<U, F>(bitcast<U>(v * inv) & 0x7FFFFFFFu, d);
  const U sign = vb >> 31;
  const uint32_t mask = (1u << d.bits) - 1u;
  if (d.is_int) return (sign != 0u ? 0u - mag : mag) & mask;
  return mag | (sign << (uint32_t)(d.bits - 1));
}

// Calls fn.template operator()<SRC, DST>() for the supported (non-identity) pair, or
// returns false. The pairs: MXINT8/6/4 -> any narrower MXINT; E4M3, E5M2 -> E3M2,
// E2M3, E2M1; E3M2, E2M3 -> E2M1.
template <class Fn>
bool dispatch_pair(int src, int dst, Fn&& fn) {
#define SLIMOPS_SS_PAIR(S, D) \
  if (src == S && dst == D) { fn.template operator()<S, D>(); return true; }
  using namespace mx;
  SLIMOPS_SS_PAIR(kInt8, kInt6) SLIMOPS_SS_PAIR(kInt8, kInt4) SLIMOPS_SS_PAIR(kInt8, kInt2)
  SLIMOPS_SS_PAIR(kInt6, kInt4) SLIMOPS_SS_PAIR(kInt6, kInt2) SLIMOPS_SS_PAIR(kInt4, kInt2)
  SLIMOPS_SS_PAIR(kFp8E4M3, kFp6E3M2) SLIMOPS_SS_PAIR(kFp8E4M3, kFp6E2M3) SLIMOPS_SS_PAIR(kFp8E4M3, kFp4E2M1)
  SLIMOPS_SS_PAIR(kFp8E5M2, kFp6E3M2) SLIMOPS_SS_PAIR(kFp8E5M2, kFp6E2M3) SLIMOPS_SS_PAIR(kFp8E5M2, kFp4E2M1)
  SLIMOPS_SS_PAIR(kFp6E3M2, kFp4E2M1) SLIMOPS_SS_PAIR(kFp6E2M3, kFp4E2M1)
#undef SLIMOPS_SS_PAIR
  return false;
}

}  // namespace slicescale
}  // namespace slimops
