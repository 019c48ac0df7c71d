// MX (OCP Microscaling v1.0) element math shared by the C++ CPU kernels and the
// CUDA kernels: E8M0 scale computation, element encode/decode, rounding and the
// float conversions. Written once here, branch-free, so the CPU tests exercise
// the same code the GPU runs. The pure-PyTorch reference
// (python/slimops/mx/reference.py) follows the same integer steps.
#pragma once

#include "../common/float_bits.cuh"  // f32_bits, bitcast, mix32, the bf16 / fp16 conversions
#include "../common/stdint_rtc.h"

#if defined(__CUDACC__)
#define MX_HD __host__ __device__ __forceinline__
#else
#define MX_HD static inline __attribute__((always_inline))
#endif

namespace slimops {
namespace mx {

// ---------------------------------------------------------------------------- formats

enum FormatId : int {
  kFp8E4M3 = 0, kFp8E5M2 = 1, kFp6E3M2 = 2, kFp6E2M3 = 3, kFp4E2M1 = 4,
  kInt8 = 5, kInt6 = 6, kInt4 = 7, kInt2 = 8, kNumFormats = 9
};

// An MXINTb element is encoded as an FP element with bias 1, mbits = b - 2 and
// no exponent field: the same fixed-point grid with quantum 2^-(b-2).
struct Format {
  int bits, mbits, bias, emax, max_code;
  bool is_int, has_nan_code;
  float max_value;
};

MX_HD constexpr Format format_of(int id) {
  switch (id) {
    case kFp8E4M3: return {8, 3, 7, 8, 0x7E, false, true, 448.0f};
    case kFp8E5M2: return {8, 2, 15, 15, 0x7B, false, true, 57344.0f};
    case kFp6E3M2: return {6, 2, 3, 4, 0x1F, false, false, 28.0f};
    case kFp6E2M3: return {6, 3, 1, 2, 0x1F, false, false, 7.5f};
    case kFp4E2M1: return {4, 1, 1, 2, 0x7, false, false, 6.0f};
    case kInt8: return {8, 6, 1, 0, 127, true, false, 127.0f / 64.0f};
    case kInt6: return {6, 4, 1, 0, 31, true, false, 31.0f / 16.0f};
    case kInt4: return {4, 2, 1, 0, 7, true, false, 7.0f / 4.0f};
    default: return {2, 0, 1, 0, 1, true, false, 1.0f};  // kInt2
  }
}

MX_HD int64_t packed_bytes(int bits, int64_t length) { return (length * bits + 7) / 8; }

// CALL(F) with the compile-time format id F equal to the run-time id fmt (ids past kInt4 take kInt2; the
// bindings have checked fmt before): the one switch the CPU kernels of the mx and mxgemm families dispatch by.
#define SLIMOPS_MX_FORMAT_CASES(fmt, CALL)            \
  switch (fmt) {                                      \
    case ::slimops::mx::kFp8E4M3: CALL(::slimops::mx::kFp8E4M3); break; \
    case ::slimops::mx::kFp8E5M2: CALL(::slimops::mx::kFp8E5M2); break; \
    case ::slimops::mx::kFp6E3M2: CALL(::slimops::mx::kFp6E3M2); break; \
    case ::slimops::mx::kFp6E2M3: CALL(::slimops::mx::kFp6E2M3); break; \
    case ::slimops::mx::kFp4E2M1: CALL(::slimops::mx::kFp4E2M1); break; \
    case ::slimops::mx::kInt8: CALL(::slimops::mx::kInt8); break;       \
    case ::slimops::mx::kInt6: CALL(::slimops::mx::kInt6); break;       \
    case ::slimops::mx::kInt4: CALL(::slimops::mx::kInt4); break;       \
    default: CALL(::slimops::mx::kInt2); break;                         \
  }

enum ScaleMode : int { kFloor = 0, kRceil = 1 };
constexpr uint32_t kE8M0Bias = 127;
constexpr uint32_t kE8M0NaN = 0xFF;

// ---------------------------------------------------------------------------- bits

// Exactly 2^e in fp32 for integer e in [-149, 127].
MX_HD float exp2i(int e) {
  uint32_t normal = (uint32_t)(e + 127) << 23;
  uint32_t sub = 1u << ((e + 149) & 31);
  return bits_f32(e >= -126 ? normal : sub);
}

// floor(log2(a)) from the bits of a finite a > 0 (|a| bits), fp32 subnormals included.
// (For a subnormal, float(mantissa) is exact and its exponent field is floor(log2(mantissa)).)
MX_HD int floor_log2_bits(uint32_t abits) {
  int exp = (int)(abits >> 23);
  int sub = (int)(f32_bits((float)(abits & 0x7FFFFFu)) >> 23) - 127 - 149;
  return exp > 0 ? exp - 127 : sub;
}

// ---------------------------------------------------------------------------- scale

// E8M0 scale byte of a block from its fp32 amax (OCP §6.3 FLOOR, or RCEIL):
//   floor: shared_exp = floor(log2(amax)) - emax_elem
//   rceil: shared_exp = ceil(log2(amax / max_elem))
// clamped to [-127, 127]; amax == 0 gives byte 0, NaN or Inf gives 0xFF.
MX_HD uint32_t scale_byte(float amax, const Format& f, int mode) {
  uint32_t abits = f32_bits(amax) & 0x7FFFFFFFu;
  int e;
  if (mode == kRceil) {
    uint32_t d = f32_bits(amax / f.max_value) & 0x7FFFFFFFu;
    int fl = floor_log2_bits(d);
    bool pow2 = (d >> 23) ? (d & 0x7FFFFF) == 0 : (d & (d - 1)) == 0;
    e = d == 0 ? -1000 : fl + (pow2 ? 0 : 1);
  } else {
    e = abits == 0 ? -1000 : floor_log2_bits(abits) - f.emax;
  }
  e = e < -127 ? -127 : (e > 127 ? 127 : e);
  return abits >= 0x7F800000u ? kE8M0NaN : (uint32_t)(e + 127);
}

// The factor 2^-shared_exp that maps a block onto the element grid (0 for NaN blocks).
MX_HD float inv_scale_of(uint32_t byte) { return byte == kE8M0NaN ? 0.0f : exp2i(127 - (int)byte); }

// The factor 2^shared_exp of a scale byte (NaN for 0xFF).
MX_HD float scale_of(uint32_t byte) {
  return byte == kE8M0NaN ? bits_f32(0x7FC00000u) : exp2i((int)byte - 127);
}

// ---------------------------------------------------------------------------- elements

// Nearest-even magnitude code of |v|, from a = its fp32 bits with the sign cleared,
// saturated at f.max_code. U is uint32_t or a vector of them, F the matching float
// type: the same lines serve the scalar code (CUDA, reference paths) and the SIMD
// loops of the CPU kernels.
//   The element grid's quantum in the binade of v is 2^(te - mbits), with
//   te = max(floor(log2|v|), 1 - bias) (1 - bias: the element's subnormal range);
//   |v| / quantum < 2^(mbits + 1) is exact in fp32, and adding 2^23 rounds it to an
//   integer q (nearest even) that lands in the low mantissa bits of the sum. Then
//   ((te + bias - 1) << mbits) + q is the code, a carry into the exponent included.
template <class U, class F>
MX_HD U encode_magnitude_rne(U a, const Format& f) {
  const U exp32 = a >> 23;
  const U lo = U() + (uint32_t)(128 - f.bias);  // te + 127 of the element's smallest binade
  const U te_b = exp32 > lo ? exp32 : lo;        // te + 127
  const F inv_quantum = bitcast<F>(((U() + (uint32_t)(254 + f.mbits)) - te_b) << 23);
  const U q = bitcast<U>(bitcast<F>(a) * inv_quantum + 8388608.0f) - 0x4B000000u;
  const U code = ((te_b - lo) << f.mbits) + q;
  const U max_code = U() + (uint32_t)f.max_code;
  return code < max_code ? code : max_code;
}

// Stochastic-rounding magnitude code of |v| (a: fp32 bits, sign cleared) with 32
// random bits: the 24-bit significand is shifted right by r = (te - mbits) - (exponent
// of its last bit) after adding r random bits (at most 31: for r > 31 the significand's
// low r - 31 bits are dropped first, so P(round up) stays sig / 2^r to 2^-31).
MX_HD uint32_t encode_magnitude_sr(uint32_t a, const Format& f, uint32_t rand) {
  int exp32 = (int)(a >> 23);
  int te_b = exp32 > 128 - f.bias ? exp32 : 128 - f.bias;
  uint32_t sig = (a & 0x7FFFFFu) | (exp32 > 0 ? 0x800000u : 0u);
  int e_eff = exp32 > 1 ? exp32 : 1;
  int r = te_b - f.mbits - e_eff + 23;
  if (r > 31) {  // 31 random bits at most: drop the significand's low bits first
    sig = r - 31 > 24 ? 0u : sig >> (r - 31);
    r = 31;
  }
  uint32_t q = (sig + (rand & ((1u << r) - 1u))) >> r;
  int code = ((te_b - 128 + f.bias) << f.mbits) + (int)q;
  return (uint32_t)(code < f.max_code ? code : f.max_code);
}

MX_HD uint32_t encode_magnitude(uint32_t vbits, const Format& f, bool stochastic, uint32_t rand) {
  uint32_t a = vbits & 0x7FFFFFFFu;
  return stochastic ? encode_magnitude_sr(a, f, rand) : encode_magnitude_rne<uint32_t, float>(a, f);
}

// One element: x (fp32) times inv_scale (2^-shared_exp) -> its b-bit code.
// In a NaN-scale block the element bits carry no value: finite x -> signed zero,
// NaN/Inf x -> the NaN code (fp8) or the max magnitude, with x's sign.
MX_HD uint32_t encode_element(float x, float inv_scale, bool nan_block, const Format& f, bool stochastic,
                              uint32_t rand) {
  uint32_t xb = f32_bits(x);
  uint32_t sign = xb >> 31;
  uint32_t mag = encode_magnitude(f32_bits(x * inv_scale), f, stochastic, rand);
  if (nan_block) {
    bool nonfinite = (xb & 0x7FFFFFFFu) >= 0x7F800000u;
    mag = nonfinite ? (f.has_nan_code ? 0x7Fu : (uint32_t)f.max_code) : 0u;
  }
  uint32_t mask = (1u << f.bits) - 1u;
  if (f.is_int) return (sign ? (0u - mag) : mag) & mask;
  return mag | (sign << (f.bits - 1));
}

// b-bit codes -> element values in fp32 (exact); fp8 NaN/Inf codes decoded. U is
// uint32_t or a vector of them, F the matching float type (as encode_magnitude_rne),
// so that the CPU kernels decode 16 lanes at a time without table gathers.
//   FP: a normal code is rebuilt as fp32 bits, exponent rebiased; a subnormal one
//   is mant * 2^(1 - bias - mbits), with float(mant) = bits(mant | 2^23 pattern) - 2^23.
//   INT: the two's complement value, made float the same way (offset 1.5 * 2^23),
//   times 2^-mbits.
template <class U, class F>
MX_HD F decode_lanes(U code, const Format& f) {
  if (f.is_int) {
    const U sext = code - ((code >> (f.bits - 1)) << f.bits);  // wraps to the negative value
    const F v = bitcast<F>(sext + 0x4B400000u) - 12582912.0f;
    return v * exp2i(-f.mbits);
  }
  const U sign_bit = U() + (1u << (f.bits - 1));
  const U mag = code & (sign_bit - 1u);
  const U e = mag >> f.mbits;
  const U mant = mag & ((1u << f.mbits) - 1u);
  const U normal = ((e + (uint32_t)(127 - f.bias)) << 23) | (mant << (23 - f.mbits));
  const F sub = (bitcast<F>(mant | 0x4B000000u) - 8388608.0f) * exp2i(1 - f.bias - f.mbits);
  U bits = e == 0 ? bitcast<U>(sub) : normal;
  U sign = (code & sign_bit) << (32 - f.bits);
  if (f.has_nan_code && f.bias == 7) {  // E4M3 NaN: the canonical, unsigned NaN
    const U nan = mag == 0x7Fu ? ~U() : U();
    bits = (bits & ~nan) | (nan & 0x7FC00000u);
    sign &= ~nan;
  }
  if (f.has_nan_code && f.bias == 15) {  // E5M2 Inf and NaN (canonical, unsigned)
    bits = e == 31u ? (mant != 0u ? U() + 0x7FC00000u : U() + 0x7F800000u) : bits;
    sign = e == 31u && mant != 0u ? U() : sign;
  }
  return bitcast<F>(bits | sign);
}

MX_HD float decode_element(uint32_t code, const Format& f) { return decode_lanes<uint32_t, float>(code, f); }

// Largest finite value of the output dtype, as fp32 bits (every conversion below
// maps it to that dtype's largest finite value exactly).
constexpr uint32_t kF32MaxBits = 0x7F7FFFFFu, kBF16MaxBits = 0x7F7F0000u, kF16MaxBits = 0x477FE000u;
constexpr uint32_t kCanonicalNaN = 0x7FC00000u;  // -> bf16 0x7FC0, fp16 0x7E00

// The value written for a decoded element d times its block's scale, v = d * 2^e
// (U/F scalar or SIMD lanes, as decode_lanes): a finite element is saturated at the
// output dtype's largest finite value max_bits (an RCEIL scale near the top of a range
// must not turn a finite input into Inf); an Inf element (an E5M2 Inf code) stays Inf;
// NaN stays the canonical quiet NaN that decode_lanes and scale_of give. Rounding then
// saturating equals saturating then rounding, so the conversions that follow may round
// to nearest even as usual. Only blocks with needs_saturation(byte) can overflow.
template <class U, class F>
MX_HD F finish_decoded(F d, F v, uint32_t max_bits) {
  const U vb = bitcast<U>(v);
  const U av = vb & 0x7FFFFFFFu;
  const U ad = bitcast<U>(d) & 0x7FFFFFFFu;
  const U sat = (vb & 0x80000000u) | max_bits;
  const U out = (av > max_bits) & (av <= 0x7F800000u) & (ad != 0x7F800000u) ? sat : vb;
  return bitcast<F>(out);
}

// max_bits of finish_decoded for an output dtype (0 fp32, 1 bf16, 2 fp16).
MX_HD constexpr uint32_t max_bits_of(int dtype) {
  return dtype == 1 ? kBF16MaxBits : dtype == 2 ? kF16MaxBits : kF32MaxBits;
}

// Whether a block with scale byte `byte` can exceed the output dtype's range: its
// elements are at most 2^(emax + 1) in magnitude (MXINT's -2^(b-1) code reaches it),
// so the product is at most 2^(emax + byte - 126), within range while that exponent is
// below the dtype's top binade + 1 (fp32 and bf16 128, fp16 16). NaN blocks need nothing.
MX_HD bool needs_saturation(uint32_t byte, const Format& f, int dtype) {
  return byte != kE8M0NaN && (int)byte + f.emax - 126 >= (dtype == 2 ? 16 : 128);
}

// ---------------------------------------------------------------------------- packing
// 16 codes <-> 2 * BITS bytes, a little-endian bit stream (element 0 lowest), the MX layout.

template <int BITS>
MX_HD void unpack16(const uint8_t* in, uint32_t* c) {
  if (BITS == 8) {
    for (int i = 0; i < 16; ++i) c[i] = in[i];
  } else if (BITS == 4) {
    for (int i = 0; i < 8; ++i) {
      c[2 * i] = in[i] & 0xFu;
      c[2 * i + 1] = in[i] >> 4;
    }
  } else if (BITS == 2) {
    for (int i = 0; i < 16; ++i) c[i] = (in[i / 4] >> (2 * (i % 4))) & 3u;
  } else {  // 6 bits: four elements in three bytes
    for (int g = 0; g < 4; ++g) {
      const uint32_t w = in[3 * g] | ((uint32_t)in[3 * g + 1] << 8) | ((uint32_t)in[3 * g + 2] << 16);
      for (int k = 0; k < 4; ++k) c[4 * g + k] = (w >> (6 * k)) & 63u;
    }
  }
}

template <int BITS>
MX_HD void pack16(const uint32_t* c, uint8_t* out) {
  if (BITS == 8) {
    for (int i = 0; i < 16; ++i) out[i] = (uint8_t)c[i];
  } else if (BITS == 4) {
    for (int i = 0; i < 8; ++i) out[i] = (uint8_t)(c[2 * i] | (c[2 * i + 1] << 4));
  } else if (BITS == 2) {
    for (int i = 0; i < 4; ++i)
      out[i] = (uint8_t)(c[4 * i] | (c[4 * i + 1] << 2) | (c[4 * i + 2] << 4) | (c[4 * i + 3] << 6));
  } else {
    for (int g = 0; g < 4; ++g) {
      const uint32_t w = c[4 * g] | (c[4 * g + 1] << 6) | (c[4 * g + 2] << 12) | (c[4 * g + 3] << 18);
      out[3 * g] = (uint8_t)w;
      out[3 * g + 1] = (uint8_t)(w >> 8);
      out[3 * g + 2] = (uint8_t)(w >> 16);
    }
  }
}

}  // namespace mx
}  // namespace slimops
