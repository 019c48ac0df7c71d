// The MX CPU runs of the AVX-512BW build (included by csrc/mx/mx_cpu.cpp there): quantize,
// fake-quantize and dequantize of runs of full blocks, tile by tile, with the lanes of
// csrc/mx/mx_cpu_avx512.h. bf16 quantize, and fp32 quantize to MXINT, take a whole tile at a time
// where every block of it can (quantize_whole_tile): the element rounding is then a fused
// multiply-add of the fp32 unit (IntByFma, FpByFma), the codes packed two units at a time
// (store_code_pair).
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "csrc/mx/mx_cpu_avx512.h"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {
namespace simd512 {

// ---------------------------------------------------------------------------- runs

// A run is `count` consecutive full blocks of BS (16, 32 or 64) elements: block i's elements
// at element i * BS of x, its packed bytes at data + i * BS * bits / 8, its scale byte at
// scales[i]. A block the lanes cannot take goes to the caller's generic(i, byte).

// The scales of the tiles of a run, then each group: fn(first_block, by, xs) for groups the
// encoder takes (with their units loaded, Encoder::kRegs registers each; false: not taken after
// all), generic(i, byte) for the other blocks, after the tile's fast loop (a call there would cost
// the loop its registers). Before those, whole(first_block, bytes) is offered each full tile with
// its scale bytes: it takes all of the tile, or returns false and takes nothing.
template <int FMT, int DT, int BS, class Whole, class Fn, class Generic>
static inline void encode_tiles(const void* x, int64_t count, int mode, uint8_t* scales, Whole whole, Fn fn,
                                Generic generic) {
  using G = Group<BS>;
  using Enc = Encoder<FMT, DT>;
  const int esize = DT == kF32 ? 4 : 2;
  for (int64_t t = 0; t < count; t += kTile) {
    const int nb = (int)(count - t < kTile ? count - t : kTile);
    const __m512i bytes = scale_bytes(tile_amax<DT>((const uint8_t*)x + t * BS * esize, nb, BS), format_of(FMT), mode);
    if (scales) _mm_mask_storeu_epi8(scales + t, (__mmask16)((1u << nb) - 1), _mm512_cvtepi32_epi8(bytes));
    if (nb == kTile && whole(t, bytes)) continue;
    alignas(64) int32_t by[kTile];
    _mm512_store_si512(by, bytes);
    uint32_t missed = 0;  // blocks left for generic
    int j = 0;
    for (; j + G::kBlocks <= nb; j += G::kBlocks) {
      __m512i xs[G::kUnits * Enc::kRegs];
      for (int h = 0; h < G::kUnits; ++h) Enc::load(x, (t + j) * BS + h * kLanes, xs + h * Enc::kRegs);
      if (!(Enc::template takes<G::kBlocks>(by + j, xs, G::kUnits) && fn(t + j, by + j, xs)))
        missed |= ((1u << G::kBlocks) - 1) << j;
    }
    if (j < nb) missed |= 1u << j;  // block 16: the run's odd last block
    for (; missed; missed &= missed - 1) {
      const int i = __builtin_ctz(missed);
      generic(t + i, (uint32_t)by[i]);
    }
  }
}

// 32 bf16 inputs x times s, rounded to integers by the fp32 unit: each half is one fused multiply-add,
// x * s + 1.5 * 2^23, whose low 16 bits are RNE(x * s) in two's complement while |x * s| < 2^22 (the
// product is exact, the one rounding is at 1, and 1.5 * 2^23 is even). bf16 -> fp32 is a word unpack
// with zeros (128-bit lane L of lo: elements 8L..8L+3, of hi: 8L+4..8L+7, with s given per those
// lanes), undone by one word permute: the integers come back in element order, in 16-bit lanes.
struct RoundByFma {
  const __m512 magic = _mm512_castsi512_ps(opaque(set32(0x4B400000)));
  const __m512i idx = opaque(_mm512_setr_epi32(0x00020000, 0x00060004, 0x00220020, 0x00260024, 0x000A0008, 0x000E000C,
                                               0x002A0028, 0x002E002C, 0x00120010, 0x00160014, 0x00320030, 0x00360034,
                                               0x001A0018, 0x001E001C, 0x003A0038, 0x003E003C));
  const __m512i even = opaque(_mm512_setr_epi32(0x00020000, 0x00060004, 0x000A0008, 0x000E000C, 0x00120010, 0x00160014,
                                                0x001A0018, 0x001E001C, 0x00220020, 0x00260024, 0x002A0028, 0x002E002C,
                                                0x00320030, 0x00360034, 0x003A0038, 0x003E003C));
  // 32 fp32 inputs (x0: elements 0..15, x1: 16..31), times s0 and s1, rounded the same way.
  inline __m512i operator()(__m512 x0, __m512 x1, __m512 s0, __m512 s1) const {
    const __m512i lo = _mm512_castps_si512(_mm512_fmadd_ps(x0, s0, magic));
    const __m512i hi = _mm512_castps_si512(_mm512_fmadd_ps(x1, s1, magic));
    return _mm512_permutex2var_epi16(lo, even, hi);
  }
  inline __m512i operator()(__m512i x, __m512 s) const {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i lo = _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, x)), s, magic));
    const __m512i hi = _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, x)), s, magic));
    return _mm512_permutex2var_epi16(lo, idx, hi);
  }
};

// MXINT from bf16 or fp32: n = RNE(x * 2^kk), kk = 127 - byte + mbits (RoundByFma), clamped to +-max_code and
// masked to its bits: the codes of encode_element (round, saturate, negate). Exact while 2^kk is a
// normal fp32 (byte <= 253 + mbits); a bf16 subnormal gives 0, as it must (|n| <= 1/2 for
// byte >= mbits + 2, which Encoder::takes_tile requires).
template <int FMT>
struct IntByFma {
  static constexpr Format f = format_of(FMT);
  static_assert(f.is_int, "MXINT formats only");
  const RoundByFma round;
  const __m512i hi_code = opaque(set16(f.max_code)), lo_code = opaque(set16(-f.max_code));
  const __m512i int_mask = opaque(set16((1 << f.bits) - 1));
  static inline __mmask16 takes_tile(__m512i bytes) { return _mm512_cmple_epi32_mask(bytes, set32(253 + f.mbits)); }
  // 2^kk of a tile's scale bytes as fp32 bits.
  static inline __m512i scale_bits(__m512i bytes) { return _mm512_slli_epi32(_mm512_sub_epi32(set32(254 + f.mbits), bytes), 23); }
  // 32 bf16 inputs and their 2^kk (per fp32 lane of RoundByFma's halves) -> 32 codes in 16-bit lanes.
  inline __m512i operator()(__m512i x, __m512 s) const { return codes(round(x, s)); }
  // 32 fp32 inputs in two registers and the 2^kk of each.
  inline __m512i operator()(__m512 x0, __m512 x1, __m512 s0, __m512 s1) const { return codes(round(x0, x1, s0, s1)); }
  inline __m512i codes(__m512i n) const {
    return _mm512_and_si512(_mm512_min_epi16(_mm512_max_epi16(n, lo_code), hi_code), int_mask);
  }
};

// MXFP from bf16: a normal element (E >= 1) is RNE((|x| + KP) >> R0) with the constant R0 = 7 - m
// (Encoder's steps at r = R0); an element subnormal (E <= 0) has the fixed quantum 2^(1 - bias - m),
// so its code is RNE(|x| * 2^kk), kk = 126 - byte + bias + m (RoundByFma; 2^kk is a normal fp32 for
// every byte Encoder::takes_tile takes). Each lane keeps the one that applies, clamped to max_code,
// with its sign.
template <int FMT>
struct FpByFma {
  static constexpr Format f = format_of(FMT);
  static_assert(!f.is_int, "MXFP formats only");
  static constexpr int R0 = 7 - f.mbits;
  const RoundByFma round;
  const __m512i abs_mask = opaque(set16(0x7FFF)), one = opaque(set16(1)), half_minus_one = opaque(set16((1 << (R0 - 1)) - 1));
  const __m512i normal_min = opaque(set16(127)), max_code = opaque(set16(f.max_code)), sign_bit = opaque(set16(1 << (f.bits - 1)));
  // KP = (bias - byte) << 7 and 2^kk (fp32 bits) of a tile's scale bytes.
  static inline __m512i kp_dwords(__m512i bytes) { return _mm512_slli_epi32(_mm512_sub_epi32(set32(f.bias), bytes), 7); }
  static inline __m512i sub_scale_bits(__m512i bytes) {
    return _mm512_slli_epi32(_mm512_sub_epi32(set32(253 + f.bias + f.mbits), bytes), 23);
  }
  inline __m512i operator()(__m512i x, __m512i KP, __m512 s) const {
    const __m512i ax = _mm512_and_si512(x, abs_mask);
    const __m512i w = _mm512_add_epi16(ax, KP);  // E << 7 plus the mantissa
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi16(w, R0), one);
    const __m512i normal = _mm512_srli_epi16(_mm512_add_epi16(_mm512_add_epi16(w, half_minus_one), odd), R0);
    const __m512i c = _mm512_min_epu16(_mm512_mask_mov_epi16(round(ax, s), _mm512_cmpgt_epi16_mask(w, normal_min), normal),
                                       max_code);
    return _mm512_ternarylogic_epi32(c, _mm512_srli_epi16(x, 16 - f.bits), sign_bit, 0xF8);  // a | (b & c)
  }
};

// A full tile of bf16 blocks (fp32: MXINT only) that takes_tile takes, with nothing checked per unit:
// the per-block constants from the tile's scale bytes, the units encoded and packed two at a time.
template <int FMT, int DT, int BS>
static inline void quantize_whole_tile(const void* xv, __m512i bytes, uint8_t* out) {
  constexpr int bits = format_of(FMT).bits, units = kTile * BS / kLanes;
  if constexpr (format_of(FMT).is_int) {
    static_assert(DT == kBF16 || DT == kF32, "bf16 or fp32 input");
    const IntByFma<FMT> by_fma;
    alignas(64) float sc[kTile];
    _mm512_store_si512(sc, IntByFma<FMT>::scale_bits(bytes));
    for (int u = 0; u < units; u += 2) {
      __m512i c[2];
      for (int h = 0; h < 2; ++h) {
        const int v = u + h;  // block 16: blocks 2v and 2v + 1, else block v * 32 / BS
        const __m512 s0 = _mm512_set1_ps(sc[BS == 16 ? 2 * v : v * kLanes / BS]);
        const __m512 s1 = BS == 16 ? _mm512_set1_ps(sc[2 * v + 1]) : s0;
        if constexpr (DT == kF32) {  // two registers of 16, one scale each
          const float* x = (const float*)xv + v * kLanes;
          c[h] = by_fma(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16), s0, s1);
        } else {  // one register of 32, its scales per 128-bit lane of RoundByFma's halves
          c[h] = by_fma(_mm512_loadu_si512((const uint16_t*)xv + v * kLanes),
                        BS == 16 ? _mm512_mask_blend_ps(0xFF00, s0, s1) : s0);
        }
      }
      store_code_pair<bits>(c[0], c[1], out + u * kLanes * bits / 8);
    }
  } else {
    const uint16_t* x = (const uint16_t*)xv;
    const FpByFma<FMT> by_fma;
    alignas(64) int32_t kp[kTile];
    alignas(64) float sc[kTile];
    _mm512_store_si512(kp, FpByFma<FMT>::kp_dwords(bytes));
    _mm512_store_si512(sc, FpByFma<FMT>::sub_scale_bits(bytes));
    for (int u = 0; u < units; u += 2) {
      __m512i c[2];
      for (int h = 0; h < 2; ++h) {
        const int v = u + h;
        const __m512i KP = BS == 16 ? _mm512_mask_blend_epi16(0xFFFF0000u, set16(kp[2 * v]), set16(kp[2 * v + 1]))
                                    : set16(kp[v * kLanes / BS]);
        const __m512 s = BS == 16 ? _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(sc[2 * v]), _mm512_set1_ps(sc[2 * v + 1]))
                                  : _mm512_set1_ps(sc[v * kLanes / BS]);
        c[h] = by_fma(_mm512_loadu_si512(x + v * kLanes), KP, s);
      }
      store_code_pair<bits>(c[0], c[1], out + u * kLanes * bits / 8);
    }
  }
}

// MX quantize of a run: scale bytes and packed codes.
template <int FMT, int DT, int BS, class Generic>
static void quantize_run(const void* x, int64_t count, int mode, uint8_t* data, uint8_t* scales, Generic generic) {
  using Enc = Encoder<FMT, DT>;
  constexpr int bits = format_of(FMT).bits;
  Enc enc;
  encode_tiles<FMT, DT, BS>(
      x, count, mode, scales,
      [&](int64_t first, __m512i bytes) {
        if constexpr (Enc::kWholeTiles) {
          __mmask16 taken = Enc::takes_tile(bytes);
          if constexpr (format_of(FMT).is_int) taken &= IntByFma<FMT>::takes_tile(bytes);
          if (taken != 0xFFFF) return false;
          quantize_whole_tile<FMT, DT, BS>((const uint8_t*)x + first * BS * (DT == kF32 ? 4 : 2), bytes,
                                           data + first * BS * bits / 8);
          return true;
        }
        return false;
      },
      [&](int64_t first, const int32_t* by, const __m512i* xs) {
        enc.template set<Group<BS>::kBlocks>(by);
        uint8_t* out = data + first * BS * bits / 8;
        for (int h = 0; h < Group<BS>::kUnits; ++h) store_codes<bits>(enc(xs + h * Enc::kRegs), out + h * kLanes * bits / 8);
        return true;
      },
      generic);
}

// MX fake-quantize (quantize, then dequantize to the input's dtype) of a run.
template <int FMT, int DT, int BS, class Generic>
static void fake_quantize_run(const void* x, int64_t count, int mode, void* out, Generic generic) {
  using Enc = Encoder<FMT, DT>;
  using Dec = Decoder<FMT, false>;  // a finite-scale block holds no NaN or Inf code (encode saturates at max_code)
  Enc enc;
  Dec dec;
  encode_tiles<FMT, DT, BS>(
      x, count, mode, nullptr, [](int64_t, __m512i) { return false; },
      [&](int64_t first, const int32_t* by, const __m512i* xs) {
        int32_t ss[2];
        for (int i = 0; i < Group<BS>::kBlocks; ++i) {
          if (!Dec::takes((uint32_t)by[i], DT)) return false;
          ss[i] = (by[i] - 127) << 7;
        }
        enc.template set<Group<BS>::kBlocks>(by);
        dec.set(group_lanes<Group<BS>::kBlocks>(ss));
        for (int h = 0; h < Group<BS>::kUnits; ++h)
          store_values<DT>(dec(enc(xs + h * Enc::kRegs)), out, first * BS + h * kLanes);
        return true;
      },
      generic);
}

// MX dequantize of a run (output fp32, bf16 or fp16); generic(i) decodes block i.
template <int FMT, int DT, int BS, class Generic>
static void dequantize_run(const uint8_t* data, const uint8_t* scales, int64_t count, void* out,
                           Generic generic) {
  using G = Group<BS>;
  using Dec = Decoder<FMT, true>;
  constexpr int bits = format_of(FMT).bits;
  Dec dec;
  for (int64_t t = 0; t < count; t += kTile) {  // tiles of blocks, the generic ones after each tile's loop
    const int nb = (int)(count - t < kTile ? count - t : kTile);
    uint32_t missed = 0;
    int j = 0;
    for (; j + G::kBlocks <= nb; j += G::kBlocks) {
      const int64_t i = t + j;
      int32_t ss[2];
      bool ok = true;
      for (int k = 0; k < G::kBlocks; ++k) {
        ok = ok && Dec::takes(scales[i + k], DT);
        ss[k] = (scales[i + k] - 127) << 7;
      }
      if (!ok) {
        missed |= ((1u << G::kBlocks) - 1) << j;
        continue;
      }
      dec.set(group_lanes<G::kBlocks>(ss));
      const uint8_t* in = data + i * BS * bits / 8;
      for (int h = 0; h < G::kUnits; ++h)
        store_values<DT>(dec(load_codes<bits>(in + h * kLanes * bits / 8)), out, i * BS + h * kLanes);
    }
    if (j < nb) missed |= 1u << j;  // block 16: the run's odd last block
    for (; missed; missed &= missed - 1) generic(t + __builtin_ctz(missed));
  }
}

// The runs above for a block size known at run time (16, 32 or 64).
#define SLIMOPS_SIMD512_BY_BLOCK(block_size, CALL) \
  switch (block_size) {                         \
    case 16: CALL(16); break;                   \
    case 32: CALL(32); break;                   \
    default: CALL(64); break;                   \
  }

}  // namespace simd512
}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
