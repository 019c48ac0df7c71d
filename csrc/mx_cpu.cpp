// MX quantize / dequantize / fake-quantize on the CPU, on the canonical layout:
// a contiguous (rows, L) input whose last axis is blocked.
//
// The element math is kernels/mx_element.cuh, shared with the CUDA kernels. This
// file is compiled once per instruction set (SLIMOPS_ISA = avx512, avx2,
// baseline; see CMakeLists.txt) and csrc/bindings.cpp picks one at run time,
// so no build depends on -march=native. The hot loops work on one block at a
// time in small fixed buffers with compile-time format parameters, written
// branch-free so that the compiler vectorises them (-fopt-info-vec shows it).
#include <stdint.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "mx_cpu.h"
#include "mx_element.cuh"

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {

using namespace slimops::mx;
constexpr int kMaxBlock = 64;

// ---------------------------------------------------------------------------- load / store

static inline void load_block(const void* x, int dtype, int64_t off, int n, float* buf) {
  if (dtype == kF32) {
    const float* p = (const float*)x + off;
    for (int i = 0; i < n; ++i) buf[i] = p[i];
  } else if (dtype == kBF16) {
    const uint16_t* p = (const uint16_t*)x + off;
    for (int i = 0; i < n; ++i) buf[i] = bits_f32((uint32_t)p[i] << 16);
  } else {
    const uint16_t* p = (const uint16_t*)x + off;
#if defined(__F16C__)
    int i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(buf + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + i))));
    for (; i < n; ++i) buf[i] = f16_to_f32(p[i]);
#else
    for (int i = 0; i < n; ++i) buf[i] = f16_to_f32(p[i]);
#endif
  }
}

static inline void store_block(const float* buf, int n, void* out, int dtype, int64_t off) {
  if (dtype == kF32) {
    memcpy((float*)out + off, buf, sizeof(float) * n);
  } else if (dtype == kBF16) {
    uint16_t* p = (uint16_t*)out + off;
    for (int i = 0; i < n; ++i) p[i] = f32_to_bf16(buf[i]);
  } else {
    uint16_t* p = (uint16_t*)out + off;
#if defined(__F16C__)
    int i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128((__m128i*)(p + i), _mm256_cvtps_ph(_mm256_loadu_ps(buf + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) p[i] = f32_to_f16(buf[i]);
#else
    for (int i = 0; i < n; ++i) p[i] = f32_to_f16(buf[i]);
#endif
  }
}

// ---------------------------------------------------------------------------- packing

// Codes of one block (a multiple of 4 elements, or the row's tail) -> packed bytes.
template <int BITS>
static inline void pack_codes(const uint32_t* c, int n, uint8_t* out, int64_t nbytes) {
  if (BITS == 8) {
    for (int i = 0; i < n; ++i) out[i] = (uint8_t)c[i];
    return;
  }
  uint8_t tmp[kMaxBlock];
  int groups = (n + 3) / 4;
  uint32_t cc[kMaxBlock + 4];
  for (int i = 0; i < n; ++i) cc[i] = c[i];
  for (int i = n; i < groups * 4; ++i) cc[i] = 0;
  if (BITS == 4) {
    for (int g = 0; g < groups * 2; ++g) tmp[g] = (uint8_t)(cc[2 * g] | (cc[2 * g + 1] << 4));
  } else if (BITS == 2) {
    for (int g = 0; g < groups; ++g)
      tmp[g] = (uint8_t)(cc[4 * g] | (cc[4 * g + 1] << 2) | (cc[4 * g + 2] << 4) | (cc[4 * g + 3] << 6));
  } else {  // 6 bits: four elements in three bytes
    for (int g = 0; g < groups; ++g) {
      uint32_t w = cc[4 * g] | (cc[4 * g + 1] << 6) | (cc[4 * g + 2] << 12) | (cc[4 * g + 3] << 18);
      tmp[3 * g] = (uint8_t)w;
      tmp[3 * g + 1] = (uint8_t)(w >> 8);
      tmp[3 * g + 2] = (uint8_t)(w >> 16);
    }
  }
  memcpy(out, tmp, (size_t)nbytes);
}

template <int BITS>
static inline void unpack_codes(const uint8_t* in, int64_t nbytes, int n, uint32_t* c) {
  if (BITS == 8) {
    for (int i = 0; i < n; ++i) c[i] = in[i];
    return;
  }
  uint8_t tmp[kMaxBlock] = {0};
  memcpy(tmp, in, (size_t)nbytes);
  int groups = (n + 3) / 4;
  uint32_t cc[kMaxBlock + 4];
  if (BITS == 4) {
    for (int g = 0; g < groups * 2; ++g) {
      cc[2 * g] = tmp[g] & 0xF;
      cc[2 * g + 1] = tmp[g] >> 4;
    }
  } else if (BITS == 2) {
    for (int g = 0; g < groups; ++g)
      for (int k = 0; k < 4; ++k) cc[4 * g + k] = (tmp[g] >> (2 * k)) & 3;
  } else {
    for (int g = 0; g < groups; ++g) {
      uint32_t w = tmp[3 * g] | ((uint32_t)tmp[3 * g + 1] << 8) | ((uint32_t)tmp[3 * g + 2] << 16);
      for (int k = 0; k < 4; ++k) cc[4 * g + k] = (w >> (6 * k)) & 63;
    }
  }
  for (int i = 0; i < n; ++i) c[i] = cc[i];
}

// ---------------------------------------------------------------------------- one block

// Encode one block: amax, scale byte, element codes. Returns the scale byte.
template <int FMT, bool SR>
static inline uint32_t encode_block(const float* v, int n, int mode, uint32_t rand_base, uint32_t key,
                                    uint32_t* codes) {
  constexpr Format f = format_of(FMT);
  float amax = 0.0f;
  uint32_t nonfinite = 0;
  for (int i = 0; i < n; ++i) {
    uint32_t a = f32_bits(v[i]) & 0x7FFFFFFFu;
    nonfinite |= a >= 0x7F800000u;
    float av = bits_f32(a);
    amax = av > amax ? av : amax;
  }
  uint32_t byte = nonfinite ? kE8M0NaN : scale_byte(amax, f, mode);
  float inv = inv_scale_of(byte);
  if (byte == kE8M0NaN) {  // rare: scalar path
    for (int i = 0; i < n; ++i) codes[i] = encode_element(v[i], inv, true, f, false, 0);
    return byte;
  }
  constexpr uint32_t sign_shift = f.is_int ? 31 : (uint32_t)(f.bits - 1);
  constexpr uint32_t mask = (1u << f.bits) - 1u;
  for (int i = 0; i < n; ++i) {
    uint32_t xb = f32_bits(v[i]);
    uint32_t rand = SR ? mix32((rand_base + (uint32_t)i) ^ key) : 0u;
    uint32_t mag = encode_magnitude(f32_bits(v[i] * inv), f, SR, rand);
    uint32_t sign = xb >> 31;
    codes[i] = f.is_int ? ((sign ? 0u - mag : mag) & mask) : (mag | (sign << sign_shift));
  }
  return byte;
}

template <int FMT>
struct DecodeTable {
  float value[256];
  DecodeTable() {
    constexpr Format f = format_of(FMT);
    for (uint32_t c = 0; c < 256; ++c) value[c] = c < (1u << f.bits) ? decode_element(c, f) : 0.0f;
  }
};

template <int FMT>
static inline void decode_block(const uint32_t* codes, int n, uint32_t byte, float* out) {
  static const DecodeTable<FMT> table;
  float s = scale_of(byte);
  for (int i = 0; i < n; ++i) out[i] = table.value[codes[i] & 0xFF] * s;
}

// ---------------------------------------------------------------------------- row loops

template <int FMT, bool SR>
static void quantize_impl(const QuantizeArgs& a) {
  constexpr Format f = format_of(FMT);
  const int64_t nblocks = (a.length + a.block_size - 1) / a.block_size;
  const int64_t row_bytes = packed_bytes(f.bits, a.length);
  const uint32_t key = mix32(a.seed);
#pragma omp parallel for schedule(static) num_threads(a.num_threads)
  for (int64_t b = 0; b < a.rows * nblocks; ++b) {
    const int64_t row = b / nblocks, k = b % nblocks;
    const int64_t start = k * a.block_size;
    const int n = (int)(a.length - start < a.block_size ? a.length - start : a.block_size);
    float v[kMaxBlock];
    uint32_t codes[kMaxBlock];
    load_block(a.x, a.dtype, row * a.length + start, n, v);
    uint32_t byte = encode_block<FMT, SR>(v, n, a.scale_mode, (uint32_t)(row * a.length + start), key, codes);
    a.scales[b] = (uint8_t)byte;
    const int64_t byte_off = start * f.bits / 8;
    const int64_t nb = packed_bytes(f.bits, start + n) - byte_off;
    pack_codes<f.bits>(codes, n, a.data + row * row_bytes + byte_off, nb);
  }
}

template <int FMT, bool SR>
static void fake_quantize_impl(const FakeQuantizeArgs& a) {
  const int64_t nblocks = (a.length + a.block_size - 1) / a.block_size;
  const uint32_t key = mix32(a.seed);
#pragma omp parallel for schedule(static) num_threads(a.num_threads)
  for (int64_t b = 0; b < a.rows * nblocks; ++b) {
    const int64_t row = b / nblocks, k = b % nblocks;
    const int64_t start = k * a.block_size;
    const int n = (int)(a.length - start < a.block_size ? a.length - start : a.block_size);
    float v[kMaxBlock];
    uint32_t codes[kMaxBlock];
    load_block(a.x, a.dtype, row * a.length + start, n, v);
    uint32_t byte = encode_block<FMT, SR>(v, n, a.scale_mode, (uint32_t)(row * a.length + start), key, codes);
    decode_block<FMT>(codes, n, byte, v);
    store_block(v, n, a.out, a.dtype, row * a.length + start);
  }
}

template <int FMT>
static void dequantize_impl(const DequantizeArgs& a) {
  constexpr Format f = format_of(FMT);
  const int64_t nblocks = (a.length + a.block_size - 1) / a.block_size;
  const int64_t row_bytes = packed_bytes(f.bits, a.length);
#pragma omp parallel for schedule(static) num_threads(a.num_threads)
  for (int64_t b = 0; b < a.rows * nblocks; ++b) {
    const int64_t row = b / nblocks, k = b % nblocks;
    const int64_t start = k * a.block_size;
    const int n = (int)(a.length - start < a.block_size ? a.length - start : a.block_size);
    const int64_t byte_off = start * f.bits / 8;
    const int64_t nb = packed_bytes(f.bits, start + n) - byte_off;
    uint32_t codes[kMaxBlock];
    float v[kMaxBlock];
    unpack_codes<f.bits>(a.data + row * row_bytes + byte_off, nb, n, codes);
    decode_block<FMT>(codes, n, a.scales[b], v);
    store_block(v, n, a.out, a.dtype, row * a.length + start);
  }
}

// ---------------------------------------------------------------------------- entry points

#define SLIMOPS_FORMAT_CASES(CALL) \
  switch (fmt) {                   \
    case kFp8E4M3: CALL(kFp8E4M3); break; \
    case kFp8E5M2: CALL(kFp8E5M2); break; \
    case kFp6E3M2: CALL(kFp6E3M2); break; \
    case kFp6E2M3: CALL(kFp6E2M3); break; \
    case kFp4E2M1: CALL(kFp4E2M1); break; \
    case kInt8: CALL(kInt8); break;       \
    case kInt6: CALL(kInt6); break;       \
    case kInt4: CALL(kInt4); break;       \
    default: CALL(kInt2); break;          \
  }

void quantize(const QuantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) (a.stochastic ? quantize_impl<F, true>(a) : quantize_impl<F, false>(a))
  SLIMOPS_FORMAT_CASES(CALL)
#undef CALL
}

void fake_quantize(const FakeQuantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) (a.stochastic ? fake_quantize_impl<F, true>(a) : fake_quantize_impl<F, false>(a))
  SLIMOPS_FORMAT_CASES(CALL)
#undef CALL
}

void dequantize(const DequantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) dequantize_impl<F>(a)
  SLIMOPS_FORMAT_CASES(CALL)
#undef CALL
}

}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
