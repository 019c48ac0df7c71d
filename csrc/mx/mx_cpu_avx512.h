// The MX CPU lanes of the AVX-512BW build (run tile by tile by csrc/mx/mx_cpu_avx512_runs.h, which
// csrc/mx/mx_cpu.cpp includes there): quantize, dequantize and fake-quantize of every format and
// block size, 32 elements at a time.
// bf16 and fp16 stay in 16-bit lanes, 32 per register; fp32 is encoded in 32-bit lanes with the
// generic element math (encode_magnitude_rne) and its codes narrowed to 16-bit lanes; every
// decode goes through 16-bit lanes of bf16 bits. The codes and values are those of
// encode_magnitude_rne / decode_lanes (kernels/mx/mx_element.cuh) bit for bit, by other integer
// steps; a block that these lanes cannot take goes back to the caller's generic code. Checked
// exhaustively (every 16-bit input at every scale byte, every code at every scale) by
// tests/mx/test_mx_every_value.py.
//
// Encode. A 16-bit input with exponent field e and P mantissa bits (bf16 P = 7, fp16 P = 10;
// input bias IB) in a block with scale byte s is scaled to v = x * 2^k, k = 127 - s. With the
// element's bias B and m mantissa bits, E = max(e, 1) + K, K = k + B - IB, is v's exponent
// in the element's biasing (E >= 1: the element's normal range). With sig the significand
// (implicit bit included), w = ((E - 1) << P) + sig = |x| + (K << P) for E >= 1, w = sig below:
//   code = min(RNE(w >> r), max_code),  r = P - m for E >= 1,  P - m + 1 - E below,
// the rounding carry running into the exponent as in the generic path; r > 15 gives 0.
// w fits 16 bits because the block's own amax bounds E (E <= emax + B + 1).
// Zeros and subnormal inputs have no implicit bit, which |x| + (K << P) misses once E >= 2
// for them: bf16 (where E = e + K, sig = |x| | 0x80) sends blocks of amax below ~2^-100
// (byte < B + m + 1) back, so that they round to 0 with r >= 9; fp16 masks zeros to code 0 and
// sends back blocks with K >= 1 that hold a subnormal (checked per register).
//
// Decode. The value of a code times 2^S, S = byte - 127, as bf16 bits: a normal element
// rebiased, (mag << (7 - m)) + ((127 - B + S) << 7); a subnormal one or an MXINT magnitude
// from a small table of its bf16 bits, plus S << 7. Exact while every nonzero result is a
// normal, finite bf16 (byte in [lo, 253 - emax]); fp32 output is those bits widened (exact, and
// the same bound keeps it below fp32's top); fp16 output widens them and rounds with vcvtps2ph
// (nearest even, subnormals kept), in blocks that cannot reach fp16's top (needs_saturation
// false). Other blocks (NaN scale, extreme scales) go back.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "kernels/mx/mx_element.cuh"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {
namespace simd512 {

using namespace slimops::mx;

constexpr int kLanes = 32;   // 16-bit lanes per register
constexpr int kTile = 16;    // blocks whose scales are computed together

static inline __m512i set16(int v) { return _mm512_set1_epi16((short)v); }
static inline __m512i set32(int v) { return _mm512_set1_epi32(v); }

// A constant register that the compiler must keep (or reload) rather than rebuild from an
// immediate at every use inside a loop, as GCC otherwise does.
static inline __m512i opaque(__m512i v) {
  asm("" : "+v"(v));
  return v;
}

// The 16-bit input/output types: mantissa bits and exponent bias.
template <int DT>
struct Half;
template <>
struct Half<kBF16> { static constexpr int kMant = 7, kBias = 127; };
template <>
struct Half<kF16> { static constexpr int kMant = 10, kBias = 15; };

// ---------------------------------------------------------------------------- scales

// Maxima of the unsigned 16-bit (U32: 32-bit) lanes of 16 blocks: a[i] holds blocks 2i and 2i + 1
// as its two 256-bit halves (each block already folded to one half). Returns, in 32-bit lane j,
// block j's max.
template <bool U32>
static inline __m512i reduce_tile(const __m512i* a) {
  const auto max = [](__m512i x, __m512i y) { return U32 ? _mm512_max_epu32(x, y) : _mm512_max_epu16(x, y); };
  __m512i b[4], c[2];
  for (int i = 0; i < 4; ++i)  // 128-bit units: unit u of b[i] holds block 4i + u
    b[i] = max(_mm512_shuffle_i64x2(a[2 * i], a[2 * i + 1], 0x88), _mm512_shuffle_i64x2(a[2 * i], a[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // qword 0 of unit u: block 8i + u, qword 1: block 8i + 4 + u
    c[i] = max(_mm512_unpacklo_epi64(b[2 * i], b[2 * i + 1]), _mm512_unpackhi_epi64(b[2 * i], b[2 * i + 1]));
  const __m512 c0 = _mm512_castsi512_ps(c[0]), c1 = _mm512_castsi512_ps(c[1]);
  __m512i d = max(_mm512_castps_si512(_mm512_shuffle_ps(c0, c1, 0x88)),
                  _mm512_castps_si512(_mm512_shuffle_ps(c0, c1, 0xDD)));  // dword k of unit u: block 4k + u
  if (!U32) d = _mm512_and_si512(_mm512_max_epu16(d, _mm512_srli_epi32(d, 16)), set32(0xFFFF));
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), d);
}

// The two 256-bit halves of each of v0, v1 folded: [v0 folded | v1 folded].
template <bool U32>
static inline __m512i fold_pair(__m512i v0, __m512i v1) {
  const __m512i lo = _mm512_shuffle_i64x2(v0, v1, 0x44), hi = _mm512_shuffle_i64x2(v0, v1, 0xEE);
  return U32 ? _mm512_max_epu32(lo, hi) : _mm512_max_epu16(lo, hi);
}

// |x| bits of the 32 elements at p when `valid`, else zero (a masked load: nothing is read).
static inline __m512i load_abs(const uint16_t* p, __mmask32 valid) {
  return _mm512_and_si512(_mm512_maskz_loadu_epi16(valid, p), set16(0x7FFF));
}

// |x| bits of the 16 fp32 elements at p when `valid`, else zero.
static inline __m512i load_abs32(const float* p, bool valid) {
  return _mm512_and_si512(_mm512_maskz_loadu_epi32(valid ? 0xFFFF : 0, p), set32(0x7FFFFFFF));
}

// The fp32 amax bits of the nb <= 16 full blocks of block_size (16, 32, 64) elements at x
// (32-bit lane j: block j; zero past nb).
template <int DT>
static inline __m512i tile_amax(const void* x, int nb, int block_size) {
  __m512i a[8];
  if (DT == kF32) {  // 16 lanes a register: a block is 1, 2 or 4 of them
    const float* p = (const float*)x;
    const int regs = block_size / 16;
    for (int i = 0; i < 8; ++i) {
      __m512i v[2];
      for (int k = 0; k < 2; ++k) {
        const int j = 2 * i + k;
        v[k] = load_abs32(p + j * block_size, j < nb);
        for (int r = 1; r < regs; ++r) v[k] = _mm512_max_epu32(v[k], load_abs32(p + j * block_size + 16 * r, j < nb));
      }
      a[i] = fold_pair<true>(v[0], v[1]);
    }
    return reduce_tile<true>(a);
  }
  const uint16_t* p = (const uint16_t*)x;
  if (block_size == 16) {  // a register is two blocks already
    for (int i = 0; i < 8; ++i) {
      const int n = nb - 2 * i;
      a[i] = load_abs(p + 32 * i, n >= 2 ? 0xFFFFFFFFu : n == 1 ? 0xFFFFu : 0u);
    }
  } else {
    const int regs = block_size / kLanes;
    for (int i = 0; i < 8; ++i) {  // blocks 2i, 2i + 1: their registers folded, then their 256-bit halves
      const __mmask32 m0 = 2 * i < nb ? 0xFFFFFFFFu : 0u, m1 = 2 * i + 1 < nb ? 0xFFFFFFFFu : 0u;
      const uint16_t* q = p + 2 * i * block_size;
      __m512i v0 = load_abs(q, m0), v1 = load_abs(q + block_size, m1);
      if (regs == 2) {
        v0 = _mm512_max_epu16(v0, load_abs(q + kLanes, m0));
        v1 = _mm512_max_epu16(v1, load_abs(q + block_size + kLanes, m1));
      }
      a[i] = fold_pair<false>(v0, v1);
    }
  }
  const __m512i m = reduce_tile<false>(a);
  if (DT == kBF16) return _mm512_slli_epi32(m, 16);
  return _mm512_castps_si512(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(m)));  // exact; Inf/NaN stay >= 0x7F800000
}

// scale_byte of 16 fp32 amaxes (bits, sign clear) at once: the same steps, lane by lane.
static inline __m512i scale_bytes(__m512i abits, const Format& f, int mode) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i d = mode == kRceil
                        ? _mm512_castps_si512(_mm512_div_ps(_mm512_castsi512_ps(abits), _mm512_set1_ps(f.max_value)))
                        : abits;
  const __m512i ex = _mm512_srli_epi32(d, 23), man = _mm512_and_si512(d, set32(0x7FFFFF));
  const __mmask16 normal = _mm512_cmpgt_epi32_mask(ex, zero);
  // floor(log2 d): the exponent, or for a subnormal that of float(mantissa) - 149
  const __m512i sub = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(man)), 23), set32(276));
  const __m512i fl = _mm512_mask_sub_epi32(sub, normal, ex, set32(127));
  __m512i e;
  if (mode == kRceil) {  // ceil: one more unless d is a power of two
    const __mmask16 pow2 = (normal & _mm512_cmpeq_epi32_mask(man, zero)) |
                           (~normal & _mm512_cmpeq_epi32_mask(_mm512_and_si512(d, _mm512_sub_epi32(d, set32(1))), zero));
    e = _mm512_mask_add_epi32(fl, (__mmask16)~pow2, fl, set32(1));
  } else {
    e = _mm512_sub_epi32(fl, set32(f.emax));
  }
  __m512i byte = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(e, set32(-127)), set32(127)), set32(127));
  byte = _mm512_mask_mov_epi32(byte, _mm512_cmpeq_epi32_mask(d, zero), zero);
  return _mm512_mask_mov_epi32(byte, _mm512_cmpge_epu32_mask(abits, set32(0x7F800000)), set32(kE8M0NaN));
}

// ---------------------------------------------------------------------------- groups

// Elements go by groups of whole blocks and whole units of 32 elements (a unit: one register of
// 16-bit lanes): block 16 puts two blocks in a unit, block 64 one block in two units.
template <int BS>
struct Group {
  static_assert(BS == 16 || BS == 32 || BS == 64, "block size");
  static constexpr int kBlocks = BS < kLanes ? kLanes / BS : 1, kUnits = BS > kLanes ? BS / kLanes : 1;
};

// Per-block values v[0] (and v[1]) as the 16-bit lanes of a unit (two blocks: v[0] low half, v[1] high).
template <int BLOCKS>
static inline __m512i group_lanes(const int32_t* v) {
  return BLOCKS == 2 ? _mm512_mask_blend_epi16(0xFFFF0000u, set16(v[0]), set16(v[1])) : set16(v[0]);
}

// ---------------------------------------------------------------------------- encode

// (1 << (r - 1)) - 1 by r (the rounding bias of a shift by r); r >= 16 lanes shift to 0 anyway.
static inline __m512i half_minus_one_table() {
  return _mm512_setr_epi32(0, 0x00030001, 0x000F0007, 0x003F001F, 0x00FF007F, 0x03FF01FF, 0x0FFF07FF, 0x3FFF1FFF,
                           0x7FFF7FFF, 0x7FFF7FFF, 0x7FFF7FFF, 0x7FFF7FFF, 0x7FFF7FFF, 0x7FFF7FFF, 0x7FFF7FFF,
                           0x7FFF7FFF);
}

// The blocks of a tile (32-bit lane j: block j's scale byte) whose scale the bf16 and fp32 encoders take in
// whole tiles: not NaN, and at least bias + mbits + 1.
template <int FMT>
static inline __mmask16 scale_takes_tile(__m512i bytes) {
  constexpr Format f = format_of(FMT);
  return _mm512_cmpneq_epi32_mask(bytes, set32(kE8M0NaN)) & _mm512_cmpge_epi32_mask(bytes, set32(f.bias + f.mbits + 1));
}

// The encoder of 16-bit inputs: K per lane (K = 127 - byte + B - IB), set from a group's scale bytes.
template <int FMT, int DT>
struct Encoder {
  static constexpr Format f = format_of(FMT);
  static constexpr int P = Half<DT>::kMant, R0 = P - f.mbits;
  static_assert(R0 >= 1, "the element must have fewer mantissa bits than the input");

  static constexpr int kRegs = 1;  // registers of one unit of 32 inputs

  // K of a scale byte.
  static constexpr int k_of(int byte) { return 127 - byte + f.bias - Half<DT>::kBias; }
  // fp16 in a block with K >= 1: whether none of the 32 inputs is a subnormal (the formula's blind spot).
  static inline bool no_subnormals(__m512i x) {
    const __m512i am1 = _mm512_sub_epi16(_mm512_and_si512(x, set16(0x7FFF)), set16(1));
    return _mm512_cmplt_epu16_mask(am1, set16(0x3FF)) == 0;
  }
  // The unit of 32 inputs at element i of x.
  static inline void load(const void* x, int64_t i, __m512i* r) { r[0] = _mm512_loadu_si512((const uint16_t*)x + i); }
  // Whether the lanes can take a group: its BLOCKS scale bytes `by` and its units' registers r.
  template <int BLOCKS>
  static inline bool takes(const int32_t* by, const __m512i* r, int units) {
    bool small = false;
    for (int j = 0; j < BLOCKS; ++j) {
      if (by[j] == (int)kE8M0NaN || (DT == kBF16 && by[j] < f.bias + f.mbits + 1)) return false;
      small |= k_of(by[j]) >= 1;
    }
    if (DT == kF16 && small)
      for (int h = 0; h < units; ++h)
        if (!no_subnormals(r[h])) return false;
    return true;
  }

  // The constants live in the object, so that a loop keeps them in registers.
  const __m512i abs_mask = opaque(set16(0x7FFF)), mant_mask = opaque(set16((1 << P) - 1)), one = opaque(set16(1));
  const __m512i implicit = opaque(set16(1 << P)), zero = _mm512_setzero_si512();
  const __m512i r_sub = opaque(set16(R0 + 1)), r_min = opaque(set16(R0)), max_code = opaque(set16(f.max_code));
  const __m512i sign_bit = opaque(set16(1 << (f.bits - 1))), int_mask = opaque(set16((1 << f.bits) - 1));
  const __m512i table = opaque(half_minus_one_table());
  __m512i K, KP;
  // The group's scale bytes (BLOCKS of them).
  template <int BLOCKS>
  inline void set(const int32_t* by) {
    int32_t k[2] = {k_of(by[0]), k_of(by[BLOCKS - 1])};
    K = group_lanes<BLOCKS>(k);
    KP = _mm512_slli_epi16(K, P);
  }

  // Whether the lanes take each block of a tile (32-bit lane j: block j's scale byte), as takes.
  static constexpr bool kWholeTiles = DT == kBF16;  // fp16 also needs its inputs checked
  static inline __mmask16 takes_tile(__m512i bytes) { return scale_takes_tile<FMT>(bytes); }
  // A unit of 32 inputs (bits) -> 32 codes in 16-bit lanes, the sign included.
  inline __m512i operator()(const __m512i* in) const {
    const __m512i x = in[0];
    const __m512i ax = _mm512_and_si512(x, abs_mask);
    const __m512i e = _mm512_srli_epi16(ax, P);
    __m512i E, sig;
    if (DT == kBF16) {  // zeros and subnormals: only in blocks where r >= 9 rounds them to 0
      E = _mm512_add_epi16(e, K);
      sig = _mm512_ternarylogic_epi32(ax, mant_mask, implicit, 0xEA);  // (a & b) | c
    } else {
      E = _mm512_add_epi16(_mm512_max_epi16(e, one), K);
      sig = _mm512_ternarylogic_epi32(ax, mant_mask, _mm512_slli_epi16(_mm512_min_epu16(e, one), P), 0xEA);  // (a & b) | c
    }
    const __mmask32 normal = _mm512_cmpgt_epi16_mask(E, zero);
    const __m512i w = _mm512_mask_add_epi16(sig, normal, ax, KP);
    const __m512i r = _mm512_max_epi16(_mm512_sub_epi16(r_sub, E), r_min);  // > 15: srlv gives 0
    const __m512i odd = _mm512_and_si512(_mm512_srlv_epi16(w, r), one);
    const __m512i bias = _mm512_permutexvar_epi16(r, table);
    __m512i c = _mm512_srlv_epi16(_mm512_add_epi16(_mm512_add_epi16(w, bias), odd), r);
    if (DT == kBF16) c = _mm512_min_epu16(c, max_code);
    else c = _mm512_maskz_min_epu16(_mm512_test_epi16_mask(ax, ax), c, max_code);  // zeros: w misread for K >= 1
    if (f.is_int) {
      c = _mm512_mask_sub_epi16(c, _mm512_movepi16_mask(x), zero, c);
      return _mm512_and_si512(c, int_mask);
    }
    return _mm512_ternarylogic_epi32(c, _mm512_srli_epi16(x, 16 - f.bits), sign_bit, 0xF8);  // a | (b & c)
  }
};

// fp32 inputs: 32-bit lanes, 16 at a time, the generic path's element math: v = x * 2^-shared_exp
// (exact but below fp32's normal range, where every element code is 0 anyway), then
// encode_magnitude_rne's steps written out (te = max(exponent, 1 - bias); |v| / 2^(te - m) rounded
// by adding 2^23; the code (te + bias - 1) << m plus that integer); the codes narrowed to 16-bit
// lanes. Every block but a NaN-scale one.
template <int FMT>
struct Encoder<FMT, kF32> {
  static constexpr Format f = format_of(FMT);
  static constexpr int kRegs = 2;
  // Whole tiles (csrc/mx/mx_cpu_avx512_runs.h) for MXINT, with the bf16 encoder's bound on the scale byte.
  static constexpr bool kWholeTiles = f.is_int;
  static inline __mmask16 takes_tile(__m512i bytes) { return scale_takes_tile<FMT>(bytes); }

  static inline void load(const void* x, int64_t i, __m512i* r) {
    r[0] = _mm512_loadu_si512((const float*)x + i);
    r[1] = _mm512_loadu_si512((const float*)x + i + 16);
  }
  template <int BLOCKS>
  static inline bool takes(const int32_t* by, const __m512i*, int) {
    for (int j = 0; j < BLOCKS; ++j)
      if (by[j] == (int)kE8M0NaN) return false;
    return true;
  }

  // The constants live in the object (see opaque).
  const __m512i abs_mask = opaque(set32(0x7FFFFFFF)), lo = opaque(set32(128 - f.bias));
  const __m512i q_exp = opaque(set32(254 + f.mbits)), magic_bits = opaque(set32(0x4B000000));
  const __m512 magic = _mm512_castsi512_ps(magic_bits);
  const __m512i max_code = opaque(set32(f.max_code)), int_mask = opaque(set32((1 << f.bits) - 1));
  __m512 inv[2];  // the two halves' 2^-shared_exp (block 16: one block each)
  template <int BLOCKS>
  inline void set(const int32_t* by) {
    inv[0] = _mm512_set1_ps(inv_scale_of((uint32_t)by[0]));
    inv[1] = _mm512_set1_ps(inv_scale_of((uint32_t)by[BLOCKS - 1]));
  }

  inline __m512i operator()(const __m512i* in) const {
    __m256i half[2];
    for (int h = 0; h < 2; ++h) {
      const __m512i a = _mm512_and_si512(_mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(in[h]), inv[h])), abs_mask);
      const __m512i te_b = _mm512_max_epu32(_mm512_srli_epi32(a, 23), lo);  // te + 127
      const __m512 inv_quantum = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(q_exp, te_b), 23));
      const __m512 rounded = _mm512_add_ps(_mm512_mul_ps(_mm512_castsi512_ps(a), inv_quantum), magic);
      const __m512i q = _mm512_sub_epi32(_mm512_castps_si512(rounded), magic_bits);
      __m512i c = _mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(te_b, lo), f.mbits), q);
      c = _mm512_min_epu32(c, max_code);
      if (f.is_int) {
        c = _mm512_mask_sub_epi32(c, _mm512_movepi32_mask(in[h]), _mm512_setzero_si512(), c);
        c = _mm512_and_si512(c, int_mask);
      } else {
        c = _mm512_or_si512(c, _mm512_slli_epi32(_mm512_srli_epi32(in[h], 31), f.bits - 1));
      }
      half[h] = _mm512_cvtepi32_epi16(c);
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
  }
};

// ---------------------------------------------------------------------------- decode

// bf16 bits of the element magnitude code i: FP subnormals (i < 2^m) or MXINT magnitudes.
static constexpr uint16_t magnitude_bf16(int i, int unit_exp) {  // i * 2^unit_exp
  int p = 0;
  while ((i >> (p + 1)) != 0) ++p;
  return i == 0 ? 0 : (uint16_t)(((127 + unit_exp + p) << 7) | ((i << (7 - p)) & 0x7F));
}

// The decoder of codes to bf16 bits: SS = S << 7 per lane (S = byte - 127), set per register.
// NANS: the codes may hold fp8 NaN or Inf codes (dequantize; fake-quantize never makes them).
template <int FMT, bool NANS>
struct Decoder {
  static constexpr Format f = format_of(FMT);

  // Whether every nonzero value of a block with this byte is a normal, finite bf16 (and, for fp16
  // output, within fp16's range: needs_saturation is false).
  // (fp32 output: the bf16 bound, which is also where fp32 needs no saturation.)
  static constexpr bool takes(uint32_t byte, int out_dtype) {
    const int lo = f.is_int ? f.mbits + 1 : f.bias + f.mbits;
    const int hi = (out_dtype == kF16 ? 141 : 253) - f.emax;
    return byte != kE8M0NaN && (int)byte >= lo && (int)byte <= hi;
  }

  // Constants kept in the object (see opaque), the tables of magnitude bf16 bits among them.
  const __m512i mag_mask = opaque(set16((1 << (f.bits - 1)) - 1)), sub_limit = opaque(set16(1 << f.mbits));
  const __m512i normal_bias = opaque(set16((127 - f.bias) << 7)), sign16 = opaque(set16(0x8000));
  const __m512i nan_code = opaque(set16(f.bias == 7 ? 0x7F : 0x7C)), canonical_nan = opaque(set16(0x7FC0));
  const __m512i inf_bits = opaque(set16(0x7F80)), int_split = opaque(set16(64)), int_top = opaque(set16(128));
  const __m512i two = opaque(set16(0x4000));
  __m512i table[4];
  __m512i SS, CS;
  Decoder() {
    alignas(64) uint16_t t[4][32];
    for (int i = 0; i < 128; ++i)
      t[i / 32][i % 32] = f.is_int ? magnitude_bf16(i, -f.mbits) : magnitude_bf16(i, 1 - f.bias - f.mbits);
    for (int i = 0; i < 4; ++i) table[i] = opaque(_mm512_load_si512(t[i]));
  }
  inline void set(__m512i ss) {
    SS = ss;
    CS = _mm512_add_epi16(ss, normal_bias);
  }

  // 32 codes (16-bit lanes) -> bf16 bits of code value * 2^S.
  inline __m512i operator()(__m512i c) const {
    if (f.is_int) {
      const __m512i s = _mm512_srai_epi16(_mm512_slli_epi16(c, 16 - f.bits), 16 - f.bits);  // sign-extended
      const __m512i a = _mm512_abs_epi16(s);  // 0 .. 2^(bits - 1)
      __m512i v = _mm512_permutex2var_epi16(table[0], a, table[1]);
      if (f.bits == 8) {  // magnitudes 64 .. 127 from the second pair of tables, 128 (only -128) is 2.0
        v = _mm512_mask_mov_epi16(v, _mm512_cmpge_epu16_mask(a, int_split), _mm512_permutex2var_epi16(table[2], a, table[3]));
        v = _mm512_mask_mov_epi16(v, _mm512_cmpeq_epi16_mask(a, int_top), two);
      }
      v = _mm512_mask_add_epi16(v, _mm512_test_epi16_mask(a, a), v, SS);
      return _mm512_ternarylogic_epi32(v, s, sign16, 0xF8);  // | sign
    }
    const __m512i mag = _mm512_and_si512(c, mag_mask);
    const __mmask32 nonzero = _mm512_test_epi16_mask(mag, mag);
    const __mmask32 sub = _mm512_cmplt_epu16_mask(mag, sub_limit);
    __m512i v = _mm512_maskz_add_epi16(nonzero & ~sub, _mm512_slli_epi16(mag, 7 - f.mbits), CS);
    v = _mm512_mask_add_epi16(v, nonzero & sub, _mm512_permutexvar_epi16(mag, table[0]), SS);
    v = _mm512_ternarylogic_epi32(v, _mm512_slli_epi16(c, 16 - f.bits), sign16, 0xF8);  // | sign
    if (NANS && f.has_nan_code && f.bias == 7)  // E4M3 NaN: the canonical NaN, unsigned
      v = _mm512_mask_mov_epi16(v, _mm512_cmpeq_epi16_mask(mag, nan_code), canonical_nan);
    if (NANS && f.has_nan_code && f.bias == 15) {  // E5M2: Inf keeps its sign, NaN is canonical
      v = _mm512_mask_mov_epi16(v, _mm512_cmpeq_epi16_mask(mag, nan_code), _mm512_ternarylogic_epi32(v, sign16, inf_bits, 0xEA));
      v = _mm512_mask_mov_epi16(v, _mm512_cmpgt_epu16_mask(mag, nan_code), canonical_nan);
    }
    return v;
  }
};

// ---------------------------------------------------------------------------- packing

// 32 codes (16-bit lanes) -> their 32 * BITS / 8 packed bytes.
template <int BITS>
static inline void store_codes(__m512i c, uint8_t* out) {
  if (BITS == 8) {
    _mm256_storeu_si256((__m256i*)out, _mm512_cvtepi16_epi8(c));
  } else if (BITS == 4) {  // pairs of lanes: c0 | c1 << 4
    _mm_storeu_si128((__m128i*)out, _mm512_cvtepi32_epi8(_mm512_or_si512(c, _mm512_srli_epi32(c, 12))));
  } else if (BITS == 2) {  // c0 | c1 << 2 per dword, then | (c2 | c3 << 2) << 4 per qword
    const __m512i t = _mm512_or_si512(c, _mm512_srli_epi32(c, 14));
    _mm_storel_epi64((__m128i*)out, _mm512_cvtepi64_epi8(_mm512_or_si512(t, _mm512_srli_epi64(t, 28))));
  } else {  // 6 bits: c0 | c1 << 6 per dword, then 24 bits per qword, 3 bytes each
    const __m512i t = _mm512_ternarylogic_epi32(c, _mm512_srli_epi32(c, 10), set32(0x3F), 0xEC);  // (a & c) | b
    const __m256i q = _mm512_cvtepi64_epi32(_mm512_or_si512(t, _mm512_srli_epi64(t, 20)));
    const __m256i g = _mm256_shuffle_epi8(q, _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                                              0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
    const __m256i packed = _mm256_permutevar8x32_epi32(g, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
    _mm256_mask_storeu_epi8(out, 0xFFFFFFu, packed);
  }
}

// 64 codes (16-bit lanes: a, then b) -> their 64 * BITS / 8 packed bytes, the same bytes as two
// store_codes. The codes go to bytes (packus: 128-bit lane L holds a's codes 8L..8L+7, then b's),
// are merged by multiply-adds (maddubs: c0 + c1 << BITS per word; madd: two words per dword), and
// the packed bytes are put in order by one byte shuffle per lane and one cross-lane permute.
template <int BITS>
static inline void store_code_pair(__m512i a, __m512i b, uint8_t* out) {
  const __m512i p = _mm512_packus_epi16(a, b);
  if (BITS == 8) {
    _mm512_storeu_si512(out, _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), p));
    return;
  }
  const __m512i w = _mm512_maddubs_epi16(p, set16(1 | (1 << BITS) << 8));  // c0 | c1 << BITS per word
  if (BITS == 4) {  // a word's low byte is a packed byte: lane dword 0 a's, dword 1 b's
    const __m512i q = _mm512_shuffle_epi8(w, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1,
                                                                                   -1, -1, -1, -1, -1, -1)));
    const __m512i o = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), q);
    _mm256_storeu_si256((__m256i*)out, _mm512_castsi512_si256(o));
    return;
  }
  const __m512i d = _mm512_madd_epi16(w, set32(1 | (1 << 2 * BITS) << 16));  // 4 codes per dword
  if (BITS == 2) {  // a dword's low byte is a packed byte: lane word 0 a's, word 1 b's
    const __m512i q = _mm512_shuffle_epi8(d, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1,
                                                                                   -1, -1, -1, -1, -1, -1)));
    const __m512i o = _mm512_permutexvar_epi16(
        _mm512_setr_epi32(0x00080000, 0x00180010, 0x00090001, 0x00190011, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), q);
    _mm_storeu_si128((__m128i*)out, _mm512_castsi512_si128(o));
    return;
  }
  // 6 bits: a dword's low 3 bytes are packed bytes: lane words 0..2 a's, 3..5 b's
  const __m512i q = _mm512_shuffle_epi8(d, _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14,
                                                                                 -1, -1, -1, -1)));
  const __m512i o = _mm512_permutexvar_epi16(
      _mm512_setr_epi32(0x00010000, 0x00080002, 0x000A0009, 0x00110010, 0x00180012, 0x001A0019, 0x00040003, 0x000B0005,
                        0x000D000C, 0x00140013, 0x001B0015, 0x001D001C, 0, 0, 0, 0),
      q);
  _mm512_mask_storeu_epi8(out, 0xFFFFFFFFFFFFull, o);
}

// Packed bytes of 32 codes -> 16-bit lanes.
template <int BITS>
static inline __m512i load_codes(const uint8_t* in) {
  if (BITS == 8) return _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)in));
  if (BITS == 4) {  // byte b -> lanes b & 15, b >> 4
    const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)in));
    return _mm512_ternarylogic_epi32(d, _mm512_slli_epi32(d, 12), set32(0x000F000F), 0xA8);  // (a | b) & c
  }
  if (BITS == 2) {  // byte b -> lanes (b >> 2k) & 3
    const __m512i q = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)in));
    const __m512i t = _mm512_or_si512(q, _mm512_slli_epi64(q, 14));
    return _mm512_ternarylogic_epi64(t, _mm512_slli_epi64(t, 28), _mm512_set1_epi64(0x0003000300030003ll), 0xA8);  // (a | b) & c
  }
  // 6 bits: 3 bytes per qword (words gathered, then the odd groups shifted by a byte), then
  // c0 | c1 << 6 | c2 << 12 | c3 << 18 spread to 16-bit lanes
  const __m512i raw = _mm512_castsi256_si512(_mm256_maskz_loadu_epi8(0xFFFFFFu, in));
  const __m512i words = _mm512_permutexvar_epi16(
      _mm512_set_epi16(0, 0, 11, 10, 0, 0, 10, 9, 0, 0, 8, 7, 0, 0, 7, 6, 0, 0, 5, 4, 0, 0, 4, 3, 0, 0, 2, 1, 0, 0, 1, 0),
      raw);
  __m512i q = _mm512_srlv_epi64(words, _mm512_set_epi64(8, 0, 8, 0, 8, 0, 8, 0));
  q = _mm512_and_si512(q, _mm512_set1_epi64(0xFFFFFF));
  const __m512i t = _mm512_ternarylogic_epi64(q, _mm512_slli_epi64(q, 20), _mm512_set1_epi64(0xFFF), 0xE4);  // c ? a : b
  const __m512i u = _mm512_ternarylogic_epi64(t, _mm512_slli_epi64(t, 10), _mm512_set1_epi64(0x0000003F0000003Fll), 0xE4);
  return _mm512_and_si512(u, set16(0x3F));
}

// 32 bf16 bits -> the output dtype's 32 values at element i of out: bf16 as they are, fp32 widened
// (exact), fp16 through fp32 rounded to nearest even.
template <int DT>
static inline void store_values(__m512i v, void* out, int64_t i) {
  if (DT == kBF16) {
    _mm512_storeu_si512((uint16_t*)out + i, v);
    return;
  }
  const __m512i lo = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16);
  const __m512i hi = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16);
  if (DT == kF32) {
    _mm512_storeu_si512((float*)out + i, lo);
    _mm512_storeu_si512((float*)out + i + 16, hi);
  } else {
    constexpr int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    _mm256_storeu_si256((__m256i*)((uint16_t*)out + i), _mm512_cvtps_ph(_mm512_castsi512_ps(lo), rn));
    _mm256_storeu_si256((__m256i*)((uint16_t*)out + i + 16), _mm512_cvtps_ph(_mm512_castsi512_ps(hi), rn));
  }
}

}  // namespace simd512
}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
