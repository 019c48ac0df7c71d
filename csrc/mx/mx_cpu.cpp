// MX quantize / dequantize / fake-quantize on the CPU, on the canonical layout:
// a contiguous (rows, L) input whose last axis is blocked.
//
// The element math is kernels/mx/mx_element.cuh, shared with the CUDA kernels. This
// file is compiled once per instruction set (SLIMOPS_ISA = avx512, avx2,
// baseline; see CMakeLists.txt) and csrc/common/isa.h picks one at run time,
// so no build depends on -march=native. The hot loops work on one block at a
// time in small fixed buffers with compile-time format parameters, written
// branch-free so that the compiler vectorises them (-fopt-info-vec shows it).
#include <stdint.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "csrc/common/parallel.h"
#include "csrc/mx/mx_cpu.h"
#include "kernels/mx/mx_element.cuh"
#if defined(__AVX512BW__)
#include "csrc/mx/mx_cpu_avx512_runs.h"
#elif defined(__AVX2__)
#include <type_traits>

#include "csrc/mx/mx_cpu_avx2.h"
#endif

namespace slimops {
namespace cpu {
namespace SLIMOPS_ISA {

using namespace slimops::mx;
constexpr int kMaxBlock = 64;

// Work goes in chunks of 16 elements (every block size is a multiple of 16): the
// loops below have compile-time trip counts, so each becomes a few vector
// instructions with no scalar epilogue. A partial last block goes through the
// same code on a zero-padded copy.
constexpr int kChunk = 16;

// Chunks covering n <= kMaxBlock elements (bounded, which also tells the compiler so).
static inline int chunks_of(int n) {
  int c = (n + kChunk - 1) / kChunk;
  return c < kMaxBlock / kChunk ? c : kMaxBlock / kChunk;
}

// ---------------------------------------------------------------------------- load / store

template <int DT>
static inline void load16(const void* x, int64_t off, float* v) {
  if (DT == kF32) {
    const float* p = (const float*)x + off;
    for (int i = 0; i < kChunk; ++i) v[i] = p[i];
  } else if (DT == kBF16) {
    const uint16_t* p = (const uint16_t*)x + off;
    for (int i = 0; i < kChunk; ++i) v[i] = bits_f32((uint32_t)p[i] << 16);
  } else {
    const uint16_t* p = (const uint16_t*)x + off;
#if defined(__F16C__)
    _mm256_storeu_ps(v, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)));
    _mm256_storeu_ps(v + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + 8))));
#else
    for (int i = 0; i < kChunk; ++i) v[i] = f16_to_f32(p[i]);
#endif
  }
}

template <int DT>
static inline void store16(const float* v, void* out, int64_t off) {
  if (DT == kF32) {
    float* p = (float*)out + off;
    for (int i = 0; i < kChunk; ++i) p[i] = v[i];
  } else if (DT == kBF16) {
    uint16_t* p = (uint16_t*)out + off;
    for (int i = 0; i < kChunk; ++i) p[i] = f32_to_bf16(v[i]);
  } else {
    uint16_t* p = (uint16_t*)out + off;
#if defined(__F16C__)
    _mm_storeu_si128((__m128i*)p, _mm256_cvtps_ph(_mm256_loadu_ps(v), _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128((__m128i*)(p + 8), _mm256_cvtps_ph(_mm256_loadu_ps(v + 8), _MM_FROUND_TO_NEAREST_INT));
#else
    for (int i = 0; i < kChunk; ++i) p[i] = f32_to_f16(v[i]);
#endif
  }
}

// Element size in bytes of each input/output dtype code.
static inline int dtype_size(int dt) { return dt == kF32 ? 4 : 2; }

// ---------------------------------------------------------------------------- packing
// pack16 / unpack16 (16 codes <-> 2 * BITS bytes) are mx_element.cuh's.

// The codes of a full block (chunks of 16) -> its packed bytes at out.
template <int BITS>
static inline void pack_block(const uint32_t* codes, int chunks, uint8_t* out) {
  for (int c = 0; c < chunks; ++c) pack16<BITS>(codes + c * kChunk, out + c * 2 * BITS);
}

// ---------------------------------------------------------------------------- elements

// Running max of |v| over 16 values, as fp32 bits: for non-negative floats the
// unsigned order of the bits is the numeric order, and NaN/Inf (>= 0x7F800000)
// sort above every finite value, so one integer max (which vectorises, unlike a
// float max under IEEE rules) gives both the amax and whether it is finite.
static inline void amax16(const float* v, uint32_t& amax_bits) {
  uint32_t m = amax_bits;
  for (int i = 0; i < kChunk; ++i) {
    uint32_t a = f32_bits(v[i]) & 0x7FFFFFFFu;
    m = a > m ? a : m;
  }
  amax_bits = m;
}

// 32-bit lanes as one register of the build's instruction set (GCC vector extensions: 16 lanes
// on AVX-512, 8 on AVX2, 4 on the SSE2 baseline). A chunk of 16 elements is 16 / kVec of them:
// wider generic vectors would be split by the compiler through the stack.
#if defined(__AVX512F__)
constexpr int kVec = 16;
#elif defined(__AVX2__)
constexpr int kVec = 8;
#else
constexpr int kVec = 4;
#endif
typedef uint32_t u32v __attribute__((vector_size(kVec * 4)));
typedef float f32v __attribute__((vector_size(kVec * 4)));

// 16 elements of a finite-scale block -> codes (the header's magnitude code plus the sign).
template <int FMT, bool SR>
static inline void encode16(const float* v, float inv, uint32_t index, uint32_t key, uint32_t* codes) {
  constexpr Format f = format_of(FMT);
  constexpr uint32_t sign_shift = f.is_int ? 31 : (uint32_t)(f.bits - 1);
  constexpr uint32_t mask = (1u << f.bits) - 1u;
  if (!SR) {
    for (int h = 0; h < kChunk; h += kVec) {
      f32v x;
      memcpy(&x, v + h, sizeof(x));
      const u32v mag = encode_magnitude_rne<u32v, f32v>(bitcast<u32v>(x * inv) & 0x7FFFFFFFu, f);
      const u32v sign = bitcast<u32v>(x) >> 31;
      const u32v code = f.is_int ? ((sign != 0 ? 0u - mag : mag) & mask) : (mag | (sign << sign_shift));
      memcpy(codes + h, &code, sizeof(code));
    }
    return;
  }
  for (int i = 0; i < kChunk; ++i) {
    uint32_t sign = f32_bits(v[i]) >> 31;
    uint32_t mag = encode_magnitude_sr(f32_bits(v[i] * inv) & 0x7FFFFFFFu, f, mix32((index + (uint32_t)i) ^ key));
    codes[i] = f.is_int ? ((sign ? 0u - mag : mag) & mask) : (mag | (sign << sign_shift));
  }
}

// The rare blocks whose scale can reach the output dtype's top: saturate 16 decoded
// values d in place (finish_decoded), out of line so that decode16 stays small and inlined.
template <int DT>
__attribute__((noinline, cold)) static void saturate16(const float* d, float* out) {
  for (int h = 0; h < kChunk; h += kVec) {
    f32v dv, v;
    memcpy(&dv, d + h, sizeof(dv));
    memcpy(&v, out + h, sizeof(v));
    v = finish_decoded<u32v, f32v>(dv, v, max_bits_of(DT));
    memcpy(out + h, &v, sizeof(v));
  }
}

// The format without its NaN code (E4M3: code 0x7F/0xFF then decodes as 480): for blocks known
// to hold none, so that their decode skips the canonical-NaN masking (five vector operations per
// register). Every other format is returned unchanged.
static constexpr Format without_nan_code(Format f) {
  return f.has_nan_code && f.bias == 7 ? Format{f.bits, f.mbits, f.bias, f.emax, f.max_code, f.is_int, false,
                                                f.max_value}
                                       : f;
}

// 16 codes of a block with scale byte `byte` -> the fp32 values written to an output
// of dtype DT (saturated at DT's largest finite value in the rare blocks whose scale
// can reach it). Scale byte 0 (2^-127, an fp32 subnormal, e.g. all-zero blocks)
// multiplies in two exact steps, since a subnormal operand is slow on x86; the result
// is the same single rounding. NAN_CODES false: the caller knows that none of the 16
// codes is an E4M3 NaN code.
template <int FMT, int DT, bool NAN_CODES = true>
static inline __attribute__((always_inline)) void decode16(const uint32_t* codes, uint32_t byte, float* out) {
  constexpr Format f = NAN_CODES ? format_of(FMT) : without_nan_code(format_of(FMT));
  alignas(64) float d[kChunk];
  const float scale = scale_of(byte);
  for (int h = 0; h < kChunk; h += kVec) {
    u32v c;
    memcpy(&c, codes + h, sizeof(c));
    const f32v dv = decode_lanes<u32v, f32v>(c, f);
    const f32v v = byte == 0 ? (dv * 0x1p-64f) * 0x1p-63f : dv * scale;
    memcpy(out + h, &v, sizeof(v));
    memcpy(d + h, &dv, sizeof(dv));
  }
  if (__builtin_expect(needs_saturation(byte, f, DT), 0)) saturate16<DT>(d, out);
}

// Whether a block's packed bytes hold an E4M3 NaN code (0x7F or 0xFF); false for other formats.
template <int FMT>
static inline bool has_nan_code(const uint8_t* packed, int nbytes) {
  constexpr Format f = format_of(FMT);
  if (!(f.has_nan_code && f.bias == 7)) return false;
  uint8_t any = 0;
  for (int i = 0; i < nbytes; ++i) any |= (uint8_t)((packed[i] | 0x80) == 0xFF);
  return any != 0;
}

// ---------------------------------------------------------------------------- one block

// Quantize one block of n <= block_size elements at x[off..off+n): scale byte and codes.
template <int FMT, int DT, bool SR>
static inline uint32_t encode_block(const void* x, int64_t off, int n, int block_size, int mode, uint32_t key,
                                    float* v, uint32_t* codes) {
  constexpr Format f = format_of(FMT);
  const int chunks = chunks_of(n);
  if (n == block_size) {
    for (int c = 0; c < chunks; ++c) load16<DT>(x, off + c * kChunk, v + c * kChunk);
  } else {  // partial last block: a zero-padded copy (zeros do not change the amax)
    alignas(64) uint8_t tmp[kMaxBlock * 4] = {0};
    memcpy(tmp, (const uint8_t*)x + off * dtype_size(DT), (size_t)n * dtype_size(DT));
    for (int c = 0; c < chunks; ++c) load16<DT>(tmp, c * kChunk, v + c * kChunk);
  }
  uint32_t amax_bits = 0;
  for (int c = 0; c < chunks; ++c) amax16(v + c * kChunk, amax_bits);
  const uint32_t byte = scale_byte(bits_f32(amax_bits), f, mode);  // 0xFF when NaN or Inf
  const float inv = inv_scale_of(byte);
  if (byte == kE8M0NaN) {  // rare: the scalar path
    for (int i = 0; i < chunks * kChunk; ++i) codes[i] = encode_element(v[i], inv, true, f, false, 0);
  } else {
    for (int c = 0; c < chunks; ++c)
      encode16<FMT, SR>(v + c * kChunk, inv, (uint32_t)off + c * kChunk, key, codes + c * kChunk);
  }
  return byte;
}

// Blocks are numbered b = row * nblocks + k; each thread takes one contiguous
// range of them and walks it with (row, start) kept incrementally (no division
// per block). fn(row, start, n, b) handles one block of n elements.
template <class Fn>
static inline void for_each_block(int64_t rows, int64_t length, int block_size, int num_threads, Fn fn) {
  const int64_t nblocks = (length + block_size - 1) / block_size;
  parallel_ranges(rows * nblocks, 1024, num_threads, [&](int64_t b0, int64_t b1) {
    int64_t row = b0 / nblocks, start = (b0 % nblocks) * block_size;
    for (int64_t b = b0; b < b1; ++b) {
      const int n = (int)(length - start < block_size ? length - start : block_size);
      fn(row, start, n, b);
      start += block_size;
      if (start >= length) {
        start = 0;
        ++row;
      }
    }
  });
}

// Quantize `count` consecutive full blocks starting at element x_off, kTile blocks
// at a time: first every block's amax, then the tile's scale bytes in one
// vectorised loop (the scalar chain of one block's scale would otherwise stall
// the vector code), then the codes. sink(i, byte, codes) consumes block i.
constexpr int kTile = 16;

// Codes of a block whose scale is NaN (kept out of line, away from the fast loop).
template <int FMT, int DT>
__attribute__((noinline)) static void encode_nan_block(const void* x, int64_t off, int chunks, uint32_t* codes) {
  constexpr Format f = format_of(FMT);
  alignas(64) float v[kChunk];
  for (int c = 0; c < chunks; ++c) {
    load16<DT>(x, off + c * kChunk, v);
    for (int i = 0; i < kChunk; ++i) codes[c * kChunk + i] = encode_element(v[i], 0.0f, true, f, false, 0);
  }
}

// Codes of one full block at x[off..) with scale byte `byte`, inv = inv_scale_of(byte).
template <int FMT, int DT, bool SR>
static inline void encode_full_block(const void* x, int64_t off, int chunks, uint32_t byte, float inv, uint32_t key,
                                     uint32_t* codes) {
  if (byte == kE8M0NaN) {  // rare: the scalar path
    encode_nan_block<FMT, DT>(x, off, chunks, codes);
    return;
  }
  alignas(64) float v[kChunk];
  for (int c = 0; c < chunks; ++c) {
    load16<DT>(x, off + c * kChunk, v);
    encode16<FMT, SR>(v, inv, (uint32_t)(off + c * kChunk), key, codes + c * kChunk);
  }
}

template <int FMT, int DT, bool SR, class Sink>
static inline void encode_run(const void* x, int64_t x_off, int64_t count, int block_size, int mode,
                              uint32_t key, Sink sink) {
  constexpr Format f = format_of(FMT);
  const int chunks = chunks_of(block_size);
  for (int64_t t = 0; t < count; t += kTile) {
    const int nb = (int)(count - t < kTile ? count - t : kTile);
    alignas(64) uint32_t amax[kTile] = {0};
    for (int j = 0; j < nb; ++j)
      for (int c = 0; c < chunks; ++c) {
        alignas(64) float v[kChunk];
        load16<DT>(x, x_off + (t + j) * block_size + c * kChunk, v);
        amax16(v, amax[j]);
      }
    alignas(64) uint32_t bytes[kTile];
    alignas(64) float inv[kTile];
    if (mode == kFloor) {  // two loops, so that each vectorises with its mode fixed
      for (int j = 0; j < kTile; ++j) bytes[j] = scale_byte(bits_f32(amax[j]), f, kFloor);
    } else {
      for (int j = 0; j < kTile; ++j) bytes[j] = scale_byte(bits_f32(amax[j]), f, kRceil);
    }
    for (int j = 0; j < kTile; ++j) inv[j] = inv_scale_of(bytes[j]);
    for (int j = 0; j < nb; ++j) {
      const int64_t off = x_off + (t + j) * block_size;
      alignas(64) uint32_t codes[kMaxBlock];
      encode_full_block<FMT, DT, SR>(x, off, chunks, bytes[j], inv[j], key, codes);
      sink(t + j, bytes[j], codes);
    }
  }
}

#if defined(__AVX2__) && !defined(__AVX512BW__)
// AVX2 build: fp32 and bf16 input, nearest rounding, every block size, every format: the lanes of
// csrc/mx/mx_cpu_avx2.h, kTile blocks at a time as encode_run (amaxes, then the tile's scale bytes in one
// vectorised loop, then the codes, 32 per step: half a block of 64, a block of 32, two blocks of 16),
// packed by pack_avx2::pack32. A block the lanes cannot take (NaN scale, a scale byte too far out for
// their exact steps; the odd last block of 16 of a run) goes through the generic code. Writes the packed
// bytes and scales of `count` full blocks from x_off.
template <int FMT, int DT>
static void quantize_avx2_run(const void* x, int64_t x_off, int64_t count, int block_size, int mode,
                              uint8_t* data, uint8_t* scales) {
  static_assert(DT == kF32 || DT == kBF16, "fp32 and bf16 inputs");
  constexpr Format f = format_of(FMT);
  using Elem = std::conditional_t<DT == kF32, float, uint16_t>;
  using Block = avx2::Block<FMT>;
  const Elem* xs = (const Elem*)x + x_off;
  const int chunks = block_size / kChunk;
  const int64_t block_bytes = (int64_t)block_size * f.bits / 8;
  const auto generic = [&](int64_t i, uint32_t byte) {
    alignas(64) uint32_t codes[kMaxBlock];
    encode_full_block<FMT, DT, false>(x, x_off + i * block_size, chunks, byte, inv_scale_of(byte), 0, codes);
    pack_block<f.bits>(codes, chunks, data + i * block_bytes);
  };
  for (int64_t t = 0; t < count; t += kTile) {
    const int nb = (int)(count - t < kTile ? count - t : kTile);
    alignas(64) uint32_t amax[kTile] = {0};
    for (int j = 0; j < nb; ++j) {
      const Elem* p = xs + (t + j) * block_size;
      if (block_size == 16) {
        amax[j] = avx2::amax<16>(p);
      } else {
        const uint32_t m0 = avx2::amax<32>(p), m1 = block_size == 64 ? avx2::amax<32>(p + 32) : 0;
        amax[j] = m0 > m1 ? m0 : m1;
      }
    }
    alignas(64) uint32_t bytes[kTile];
    if (mode == kFloor) {
      for (int j = 0; j < kTile; ++j) bytes[j] = scale_byte(bits_f32(amax[j]), f, kFloor);
    } else {
      for (int j = 0; j < kTile; ++j) bytes[j] = scale_byte(bits_f32(amax[j]), f, kRceil);
    }
    for (int j = 0; j < nb; ++j) scales[t + j] = (uint8_t)bytes[j];
    if (block_size == 16) {  // two blocks per step
      for (int j = 0; j < nb; j += 2) {
        const int64_t i = t + j;
        if (__builtin_expect(j + 1 < nb && Block::takes(bytes[j]) && Block::takes(bytes[j + 1]), 1)) {
          const __m256i codes = Block(bytes[j], bytes[j + 1]).codes32(xs + i * 16);
          slimops::pack_avx2::pack32<f.bits>(codes, data + i * block_bytes, i + 2 < count);
        } else {
          generic(i, bytes[j]);
          if (j + 1 < nb) generic(i + 1, bytes[j + 1]);
        }
      }
      continue;
    }
    for (int j = 0; j < nb; ++j) {
      const int64_t i = t + j;
      if (__builtin_expect(!Block::takes(bytes[j]), 0)) {
        generic(i, bytes[j]);
        continue;
      }
      const Block blk(bytes[j]);
      for (int h = 0; h < block_size; h += 32) {
        const bool more = i + 1 < count || h + 32 < block_size;  // a step of this run writes after this one
        slimops::pack_avx2::pack32<f.bits>(blk.codes32(xs + i * block_size + h),
                                           data + i * block_bytes + h * f.bits / 8, more);
      }
    }
  }
}
#endif

// Runs of full blocks, split over threads: the whole tensor is one run when the
// length is a multiple of the block size; otherwise each row is a run plus a
// partial tail block. run(row, x_off, first_block, count) then tail(row).

template <class Run, class Tail>
static inline void for_each_run(int64_t rows, int64_t length, int block_size, int num_threads, Run run, Tail tail) {
  const int64_t full = length / block_size;
  if (length % block_size == 0) {
    parallel_ranges(rows * full, 1024, num_threads,
                    [&](int64_t i0, int64_t i1) { run(i0 * block_size, i0, i1 - i0); });
  } else {
    parallel_ranges(rows, 32768 / (length + 1) + 1, num_threads, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        run(row * length, row * (full + 1), full);
        tail(row);
      }
    });
  }
}

// Pack the codes of a block into its place in the row (the tail block writes only its bytes).
template <int BITS>
static inline void store_packed(const uint32_t* codes, int n, int64_t start, uint8_t* row_data) {
  const int chunks = chunks_of(n);
  const int64_t byte_off = start * BITS / 8;
  if (n % kChunk == 0) {
    pack_block<BITS>(codes, chunks, row_data + byte_off);
  } else {
    uint8_t tmp[kMaxBlock];
    pack_block<BITS>(codes, chunks, tmp);
    memcpy(row_data + byte_off, tmp, (size_t)(packed_bytes(BITS, start + n) - byte_off));
  }
}

template <int DT>
static inline void store_block(const float* v, int n, void* out, int64_t off) {
  const int chunks = chunks_of(n);
  if (n % kChunk == 0) {
    for (int c = 0; c < chunks; ++c) store16<DT>(v + c * kChunk, out, off + c * kChunk);
  } else {
    alignas(64) uint8_t tmp[kMaxBlock * 4];
    for (int c = 0; c < chunks; ++c) store16<DT>(v + c * kChunk, tmp, c * kChunk);
    memcpy((uint8_t*)out + off * dtype_size(DT), tmp, (size_t)n * dtype_size(DT));
  }
}

// ---------------------------------------------------------------------------- row loops


template <int FMT, int DT, bool SR>
static void quantize_impl(const QuantizeArgs& a) {
  constexpr Format f = format_of(FMT);
  const int64_t row_bytes = packed_bytes(f.bits, a.length);
  const int64_t full = a.length / a.block_size;
  const uint32_t key = mix32(a.seed);
  for_each_run(
      a.rows, a.length, a.block_size, a.num_threads,
      [&](int64_t x_off, int64_t first_block, int64_t count) {
        // x_off / length is the row; a full block's packed bytes start at row * row_bytes + k * block_bytes.
        const int64_t row0 = x_off / a.length, k0 = x_off % a.length / a.block_size;
        uint8_t* data = a.data + row0 * row_bytes + k0 * a.block_size * f.bits / 8;
        uint8_t* scales = a.scales + first_block;
#if defined(__AVX512BW__)
        if constexpr (!SR) {  // csrc/mx/mx_cpu_avx512_runs.h
          const int64_t block_bytes = (int64_t)a.block_size * f.bits / 8;
          const auto generic = [&](int64_t i, uint32_t byte) {
            const int chunks = chunks_of(a.block_size);
            alignas(64) uint32_t codes[kMaxBlock];
            encode_full_block<FMT, DT, false>(a.x, x_off + i * a.block_size, chunks, byte, inv_scale_of(byte), 0, codes);
            pack_block<f.bits>(codes, chunks, data + i * block_bytes);
          };
          const void* x = (const uint8_t*)a.x + x_off * dtype_size(DT);
#define CALL(BS) simd512::quantize_run<FMT, DT, BS>(x, count, a.scale_mode, data, scales, generic)
          SLIMOPS_SIMD512_BY_BLOCK(a.block_size, CALL)
#undef CALL
          return;
        }
#elif defined(__AVX2__)
        if constexpr ((DT == kF32 || DT == kBF16) && !SR) {
          quantize_avx2_run<FMT, DT>(a.x, x_off, count, a.block_size, a.scale_mode, data, scales);
          return;
        }
#endif
        const int chunks = chunks_of(a.block_size);
        const int64_t block_bytes = (int64_t)a.block_size * f.bits / 8;
        encode_run<FMT, DT, SR>(a.x, x_off, count, a.block_size, a.scale_mode, key,
                                [&, chunks, block_bytes, scales, data](int64_t i, uint32_t byte, const uint32_t* codes) {
                                  scales[i] = (uint8_t)byte;
                                  pack_block<f.bits>(codes, chunks, data + i * block_bytes);
                                });
      },
      [&](int64_t row) {
        const int64_t start = full * a.block_size;
        const int n = (int)(a.length - start);
        alignas(64) float v[kMaxBlock];
        alignas(64) uint32_t codes[kMaxBlock];
        a.scales[row * (full + 1) + full] = (uint8_t)encode_block<FMT, DT, SR>(
            a.x, row * a.length + start, n, a.block_size, a.scale_mode, key, v, codes);
        store_packed<f.bits>(codes, n, start, a.data + row * row_bytes);
      });
}

// Decode the codes of a full block of fake-quantize (scale byte `byte`) into out[off..).
template <int FMT, int DT>
static inline void decode_store_block(const uint32_t* codes, int chunks, uint32_t byte, void* out, int64_t off) {
  alignas(64) float v[kChunk];
  // a finite-scale block holds no NaN code (encode saturates at max_code)
  const bool nan_block = byte == kE8M0NaN;
  for (int c = 0; c < chunks; ++c) {
    if (nan_block) decode16<FMT, DT>(codes + c * kChunk, byte, v);
    else decode16<FMT, DT, false>(codes + c * kChunk, byte, v);
    store16<DT>(v, out, off + c * kChunk);
  }
}

template <int FMT, int DT, bool SR>
static void fake_quantize_impl(const FakeQuantizeArgs& a) {
  const int64_t full = a.length / a.block_size;
  const uint32_t key = mix32(a.seed);
  for_each_run(
      a.rows, a.length, a.block_size, a.num_threads,
      [&](int64_t x_off, int64_t, int64_t count) {
        const int chunks = chunks_of(a.block_size), block_size = a.block_size;
        void* const out = a.out;
#if defined(__AVX512BW__)
        if constexpr (!SR) {  // csrc/mx/mx_cpu_avx512_runs.h
          const auto generic = [&](int64_t i, uint32_t byte) {
            const int64_t off = x_off + i * block_size;
            alignas(64) uint32_t codes[kMaxBlock];
            encode_full_block<FMT, DT, false>(a.x, off, chunks, byte, inv_scale_of(byte), 0, codes);
            decode_store_block<FMT, DT>(codes, chunks, byte, out, off);
          };
          const void* x = (const uint8_t*)a.x + x_off * dtype_size(DT);
          void* y = (uint8_t*)out + x_off * dtype_size(DT);
#define CALL(BS) simd512::fake_quantize_run<FMT, DT, BS>(x, count, a.scale_mode, y, generic)
          SLIMOPS_SIMD512_BY_BLOCK(block_size, CALL)
#undef CALL
          return;
        }
#endif
        encode_run<FMT, DT, SR>(a.x, x_off, count, a.block_size, a.scale_mode, key,
                                [&, chunks, x_off, block_size, out](int64_t i, uint32_t byte, const uint32_t* codes) {
                                  decode_store_block<FMT, DT>(codes, chunks, byte, out, x_off + i * block_size);
                                });
      },
      [&](int64_t row) {
        const int64_t start = full * a.block_size, off = row * a.length + start;
        const int n = (int)(a.length - start);
        alignas(64) float v[kMaxBlock];
        alignas(64) uint32_t codes[kMaxBlock];
        uint32_t byte = encode_block<FMT, DT, SR>(a.x, off, n, a.block_size, a.scale_mode, key, v, codes);
        for (int c = 0; c < chunks_of(n); ++c) decode16<FMT, DT>(codes + c * kChunk, byte, v + c * kChunk);
        store_block<DT>(v, n, a.out, off);
      });
}

// Dequantize block b (row, elements start .. start + n) with the generic code.
template <int FMT, int DT>
static inline void dequantize_block(const DequantizeArgs& a, int64_t row, int64_t start, int n, int64_t b) {
  constexpr Format f = format_of(FMT);
  const int chunks = chunks_of(n);
  const uint8_t* src = a.data + row * packed_bytes(f.bits, a.length) + start * f.bits / 8;
  alignas(64) uint8_t packed[kMaxBlock];
  if (n % kChunk) {  // tail block: copy its bytes into a zeroed buffer
    memset(packed, 0, sizeof(packed));
    memcpy(packed, src, (size_t)(packed_bytes(f.bits, start + n) - start * f.bits / 8));
    src = packed;
  }
  alignas(64) uint32_t codes[kMaxBlock];
  alignas(64) float v[kMaxBlock];
  const uint32_t byte = a.scales[b];
  if (__builtin_expect(has_nan_code<FMT>(src, chunks * 2 * f.bits), 0)) {
    for (int c = 0; c < chunks; ++c) {
      unpack16<f.bits>(src + c * 2 * f.bits, codes + c * kChunk);
      decode16<FMT, DT>(codes + c * kChunk, byte, v + c * kChunk);
    }
  } else {
    for (int c = 0; c < chunks; ++c) {
      unpack16<f.bits>(src + c * 2 * f.bits, codes + c * kChunk);
      decode16<FMT, DT, false>(codes + c * kChunk, byte, v + c * kChunk);
    }
  }
  store_block<DT>(v, n, a.out, row * a.length + start);
}

template <int FMT, int DT>
static void dequantize_impl(const DequantizeArgs& a) {
#if defined(__AVX512BW__)
  {  // csrc/mx/mx_cpu_avx512_runs.h, runs of full blocks
    constexpr Format f = format_of(FMT);
    const int64_t row_bytes = packed_bytes(f.bits, a.length), full = a.length / a.block_size;
    for_each_run(
        a.rows, a.length, a.block_size, a.num_threads,
        [&](int64_t x_off, int64_t first_block, int64_t count) {
          const int64_t row0 = x_off / a.length, k0 = x_off % a.length / a.block_size;
          const uint8_t* data = a.data + row0 * row_bytes + k0 * a.block_size * f.bits / 8;
          const auto generic = [&](int64_t i) {
            const int64_t g = x_off + i * a.block_size;
            dequantize_block<FMT, DT>(a, g / a.length, g % a.length, a.block_size, first_block + i);
          };
          void* out = (uint8_t*)a.out + x_off * dtype_size(DT);
#define CALL(BS) simd512::dequantize_run<FMT, DT, BS>(data, a.scales + first_block, count, out, generic)
          SLIMOPS_SIMD512_BY_BLOCK(a.block_size, CALL)
#undef CALL
        },
        [&](int64_t row) {
          const int64_t start = full * a.block_size;
          dequantize_block<FMT, DT>(a, row, start, (int)(a.length - start), row * (full + 1) + full);
        });
    return;
  }
#endif
  for_each_block(a.rows, a.length, a.block_size, a.num_threads, [&](int64_t row, int64_t start, int n, int64_t b) {
    dequantize_block<FMT, DT>(a, row, start, n, b);
  });
}

// ---------------------------------------------------------------------------- entry points
// (dispatched by SLIMOPS_MX_FORMAT_CASES, kernels/mx/mx_element.cuh)

template <int FMT, template <int, int, bool> class Impl, class Args>
static void by_dtype_sr(const Args& a) {
  if (a.dtype == kF32) a.stochastic ? Impl<FMT, kF32, true>::run(a) : Impl<FMT, kF32, false>::run(a);
  else if (a.dtype == kBF16) a.stochastic ? Impl<FMT, kBF16, true>::run(a) : Impl<FMT, kBF16, false>::run(a);
  else a.stochastic ? Impl<FMT, kF16, true>::run(a) : Impl<FMT, kF16, false>::run(a);
}

template <int FMT, int DT, bool SR>
struct Quantize { static void run(const QuantizeArgs& a) { quantize_impl<FMT, DT, SR>(a); } };
template <int FMT, int DT, bool SR>
struct FakeQuantize { static void run(const FakeQuantizeArgs& a) { fake_quantize_impl<FMT, DT, SR>(a); } };

template <int FMT>
static void dequantize_by_dtype(const DequantizeArgs& a) {
  if (a.dtype == kF32) dequantize_impl<FMT, kF32>(a);
  else if (a.dtype == kBF16) dequantize_impl<FMT, kBF16>(a);
  else dequantize_impl<FMT, kF16>(a);
}

void quantize(const QuantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) by_dtype_sr<F, Quantize>(a)
  SLIMOPS_MX_FORMAT_CASES(fmt, CALL)
#undef CALL
}

void fake_quantize(const FakeQuantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) by_dtype_sr<F, FakeQuantize>(a)
  SLIMOPS_MX_FORMAT_CASES(fmt, CALL)
#undef CALL
}

void dequantize(const DequantizeArgs& a) {
  const int fmt = a.fmt;
#define CALL(F) dequantize_by_dtype<F>(a)
  SLIMOPS_MX_FORMAT_CASES(fmt, CALL)
#undef CALL
}

}  // namespace SLIMOPS_ISA
}  // namespace cpu
}  // namespace slimops
