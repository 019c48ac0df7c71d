// Device code of the MX CUDA kernels (quantize / dequantize / fake-quantize on the
// canonical layout): everything a kernel runs, and nothing of the host. Two compilers
// take it:
//   nvcc: kernels/mx/mx_kernels.cu includes it and launches the __global__ templates
//     below (slimops._C_cuda);
//   NVRTC: kernels/mx/mx_kernels_rtc.cu includes it and wraps the same kernel bodies
//     in extern "C" entry points, compiled at first use (python/slimops/mx/nvrtc.py).
// So it includes no host header when __CUDACC_RTC__ is defined (NVRTC has no C
// library headers, nor cuda_fp16.h / cuda_bf16.h): the fixed-width types come from
// kernels/common/stdint_rtc.h, the 16-bit float conversions are the same PTX instructions inline.
//
// Layout: a contiguous (rows, L) input whose last axis is cut into blocks of 16, 32
// or 64 elements (the last block of a row may be partial); packed data (rows,
// ceil(L * bits / 8)), a little-endian bit stream per row (element 0 lowest); E8M0
// scales (rows, ceil(L / block_size)).
//
// The element math (scale byte, encode, decode, rounding, float conversions) is
// kernels/mx/mx_element.cuh, shared with the CPU kernels; this file only moves data.
//
// Work split: one thread takes one chunk of 16 consecutive elements (every block
// size is a multiple of 16), so an MX block is 1, 2 or 4 consecutive lanes of a
// warp and its amax is a max over those lanes by shuffles. A chunk's packed codes
// are 2 * bits bytes (fp8 16, fp6 12, fp4 8, int2 4): a warp writes one contiguous
// run. Two paths per kernel, chosen on the host:
//   FLAT: L % block_size == 0 and aligned pointers: the tensor, its packed data and
//     its scales are then flat sequences of whole chunks (chunk u starts at element
//     16u, data byte 2 * bits * u, its block is u / lanes_per_block): 16-byte loads
//     and stores, no division.
//   general: chunk u is chunk (u % chunks_per_row) of row u / chunks_per_row, where
//     chunks_per_row = blocks_per_row * lanes_per_block (so a block's lanes stay
//     aligned in the warp); element-wise loads and byte stores guarded by the row
//     length; the chunks past the end of a row's partial block hold zeros (they do
//     not change the amax, and encode to code 0, as the reference's padding).
// Every kernel is templated on the format (element parameters are compile time),
// the float dtype and the rounding; the loops are grid-stride over warp-aligned
// chunk ranges so that the whole warp takes part in the shuffles. The launch
// (ceil(units / kThreads) CTAs of kThreads, at most 2^30; FLAT only with the data
// aligned to data_align(bits)) is the host's: mx_kernels.cu, mirrored by
// python/slimops/mx/nvrtc.py.
#pragma once

#if !defined(__CUDACC_RTC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#include "mx_element.cuh"
#include "mx_params.h"
#include "../common/stdint_rtc.h"

namespace slimops {
namespace cuda {
namespace {

using namespace slimops::mx;

constexpr int kChunk = 16;                // elements per thread
constexpr int kThreads = 256;             // threads per CTA
constexpr unsigned kFullMask = 0xFFFFFFFFu;

// Where chunk u lives (see the file comment).
struct Geometry {
  int64_t length;          // L
  int64_t units;           // chunks in all
  int64_t chunks_per_row;  // blocks_per_row * lanes_per_block (general path)
  int64_t row_bytes;       // packed bytes of a row
  int log2_lanes;          // log2(block_size / 16): lanes (chunks) per MX block
};

struct Chunk {
  int64_t x_off;     // element offset of the chunk in x / out
  int64_t data_off;  // byte offset of its packed codes
  int n;             // elements of the chunk inside the row, 0..16 (0: out of range)
  int nbytes;        // packed bytes of those n elements
};

template <int BITS, bool FLAT>
__device__ __forceinline__ Chunk locate(const Geometry& g, int64_t u) {
  Chunk c;
  if (FLAT) {
    c.x_off = u * kChunk;
    c.data_off = u * (2 * BITS);
    c.n = u < g.units ? kChunk : 0;
    c.nbytes = 2 * BITS;
    return c;
  }
  int64_t row;
  if (g.units <= (int64_t)UINT32_MAX) {  // 32-bit division when it fits (warp-uniform branch)
    row = (uint32_t)u / (uint32_t)g.chunks_per_row;
  } else {
    row = u / g.chunks_per_row;
  }
  const int64_t j0 = (u - row * g.chunks_per_row) * kChunk;
  const int64_t rem = g.length - j0;
  c.n = u >= g.units || rem <= 0 ? 0 : (rem < kChunk ? (int)rem : kChunk);
  c.x_off = row * g.length + j0;
  c.data_off = row * g.row_bytes + j0 * BITS / 8;
  c.nbytes = c.n > 0 ? (int)(packed_bytes(BITS, j0 + c.n) - j0 * BITS / 8) : 0;
  return c;
}

// ---------------------------------------------------------------------------- float I/O

// 16-bit floats <-> fp32. fp16 -> fp32 and the two narrowing conversions use the
// hardware instructions by default: they are the IEEE conversions (exact widening;
// round to nearest even, subnormals kept, overflow to Inf) that torch's own CUDA
// casts use, so the bits equal the header's except for NaN payloads (which the
// tests ignore), at a fraction of the integer work (the header's fp16 rounding is
// ~30 instructions an element, more than the rest of the dequantize kernel).
// Build with -DSLIMOPS_MX_HEADER_CVT=1 to use the header's conversions instead.
#ifndef SLIMOPS_MX_HEADER_CVT
#define SLIMOPS_MX_HEADER_CVT 0
#endif

// The hardware conversions. nvcc: the cuda_fp16.h / cuda_bf16.h intrinsics. NVRTC (no
// such headers): the PTX instructions those intrinsics emit on sm_80+ (cvt.rn.bf16.f32,
// cvt.rn.bf16x2.f32 and cvt.rn.f16x2.f32 need sm_80; below it the bf16 ones are the
// header's integer rounding, the f16x2 one two cvt.rn.f16.f32: the same bits, NaN aside,
// which the callers replace). cvt.rn.*x2.f32 d, a, b puts a in the high half.
#if defined(__CUDACC_RTC__)
__device__ __forceinline__ float cvt_f16_to_f32(uint32_t h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"((unsigned short)h));
  return f;
}
__device__ __forceinline__ uint32_t cvt_f32_to_f16(float v) {
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
  return h;
}
__device__ __forceinline__ uint32_t cvt_f32_to_bf16(float v) {
#if __CUDA_ARCH__ >= 800
  unsigned short h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(v));
  return h;
#else
  return f32_to_bf16(v);
#endif
}
__device__ __forceinline__ uint32_t cvt_f32x2_to_f16x2(float a, float b) {
#if __CUDA_ARCH__ >= 800
  uint32_t w;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(b), "f"(a));
  return w;
#else
  return cvt_f32_to_f16(a) | (cvt_f32_to_f16(b) << 16);
#endif
}
__device__ __forceinline__ uint32_t cvt_f32x2_to_bf16x2(float a, float b) {
#if __CUDA_ARCH__ >= 800
  uint32_t w;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(w) : "f"(b), "f"(a));
  return w;
#else
  return cvt_f32_to_bf16(a) | (cvt_f32_to_bf16(b) << 16);
#endif
}
#else
__device__ __forceinline__ float cvt_f16_to_f32(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)h)); }
__device__ __forceinline__ uint32_t cvt_f32_to_f16(float v) { return __half_as_ushort(__float2half_rn(v)); }
__device__ __forceinline__ uint32_t cvt_f32_to_bf16(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
__device__ __forceinline__ uint32_t cvt_f32x2_to_f16x2(float a, float b) {
  return bitcast<uint32_t>(__floats2half2_rn(a, b));
}
__device__ __forceinline__ uint32_t cvt_f32x2_to_bf16x2(float a, float b) {
  return bitcast<uint32_t>(__floats2bfloat162_rn(a, b));
}
#endif

template <int DT>
__device__ __forceinline__ float half_to_f32(uint32_t h) {
  if constexpr (DT == kBF16) return bf16_to_f32((uint16_t)h);  // a shift
#if SLIMOPS_MX_HEADER_CVT
  return f16_to_f32((uint16_t)h);
#else
  return cvt_f16_to_f32(h);
#endif
}

template <int DT>
__device__ __forceinline__ uint32_t f32_to_half(float v) {
#if SLIMOPS_MX_HEADER_CVT
  return DT == kBF16 ? (uint32_t)f32_to_bf16(v) : (uint32_t)f32_to_f16(v);
#else
  // The hardware conversions give 0x7FFF for NaN; the header's (and torch's CPU casts) the
  // canonical quiet NaN: 0x7FC0 (bf16), 0x7E00 (fp16).
  if constexpr (DT == kBF16) return v != v ? 0x7FC0u : cvt_f32_to_bf16(v);
  else return v != v ? 0x7E00u : cvt_f32_to_f16(v);
#endif
}

// Two values -> their 16-bit encodings, a in the low half (the lower address).
template <int DT>
__device__ __forceinline__ uint32_t f32x2_to_half2(float a, float b) {
#if SLIMOPS_MX_HEADER_CVT
  return f32_to_half<DT>(a) | (f32_to_half<DT>(b) << 16);
#else
  uint32_t w;
  if constexpr (DT == kBF16) w = cvt_f32x2_to_bf16x2(a, b);
  else w = cvt_f32x2_to_f16x2(a, b);
  const uint32_t nan = DT == kBF16 ? 0x7FC0u : 0x7E00u;  // as f32_to_half: the canonical NaN
  if (a != a) w = (w & 0xFFFF0000u) | nan;
  if (b != b) w = (w & 0x0000FFFFu) | (nan << 16);
  return w;
#endif
}

// 16 elements at x[off..off+16), 16-byte aligned.
template <int DT>
__device__ __forceinline__ void load_vec(const void* __restrict__ x, int64_t off, float (&v)[kChunk]) {
  if constexpr (DT == kF32) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(x) + off);
#pragma unroll
    for (int k = 0; k < kChunk / 4; ++k) {
      const float4 q = __ldg(p + k);
      v[4 * k] = q.x;
      v[4 * k + 1] = q.y;
      v[4 * k + 2] = q.z;
      v[4 * k + 3] = q.w;
    }
  } else {
    const uint4* p = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(x) + off);
#pragma unroll
    for (int k = 0; k < kChunk / 8; ++k) {
      const uint4 q = __ldg(p + k);
      const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[8 * k + 2 * i] = half_to_f32<DT>(w[i] & 0xFFFFu);
        v[8 * k + 2 * i + 1] = half_to_f32<DT>(w[i] >> 16);
      }
    }
  }
}

// The first n of 16 elements at x[off..), zeros after.
template <int DT>
__device__ __forceinline__ void load_scalar(const void* __restrict__ x, int64_t off, int n, float (&v)[kChunk]) {
#pragma unroll
  for (int i = 0; i < kChunk; ++i) {
    float f = 0.0f;
    if (i < n) {
      if constexpr (DT == kF32) f = __ldg(static_cast<const float*>(x) + off + i);
      else f = half_to_f32<DT>(__ldg(static_cast<const unsigned short*>(x) + off + i));
    }
    v[i] = f;
  }
}

template <int DT>
__device__ __forceinline__ void store_vec(void* __restrict__ out, int64_t off, const float (&v)[kChunk]) {
  if constexpr (DT == kF32) {
    float4* p = reinterpret_cast<float4*>(static_cast<float*>(out) + off);
#pragma unroll
    for (int k = 0; k < kChunk / 4; ++k) p[k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
  } else {
    uint4* p = reinterpret_cast<uint4*>(static_cast<uint16_t*>(out) + off);
    uint32_t w[kChunk / 2];
#pragma unroll
    for (int i = 0; i < kChunk / 2; ++i) w[i] = f32x2_to_half2<DT>(v[2 * i], v[2 * i + 1]);
#pragma unroll
    for (int k = 0; k < kChunk / 8; ++k) p[k] = make_uint4(w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]);
  }
}

template <int DT>
__device__ __forceinline__ void store_scalar(void* __restrict__ out, int64_t off, int n, const float (&v)[kChunk]) {
#pragma unroll
  for (int i = 0; i < kChunk; ++i) {
    if (i < n) {
      if constexpr (DT == kF32) static_cast<float*>(out)[off + i] = v[i];
      else static_cast<uint16_t*>(out)[off + i] = (uint16_t)f32_to_half<DT>(v[i]);
    }
  }
}

// ---------------------------------------------------------------------------- packing

// 16 codes of BITS bits are 16 * BITS bits = BITS / 2 little-endian 32-bit words.
template <int BITS>
struct Packed {
  uint32_t w[BITS / 2];
};

template <int BITS>
__device__ __forceinline__ Packed<BITS> pack(const uint32_t (&c)[kChunk]) {
  Packed<BITS> p;
#pragma unroll
  for (int k = 0; k < BITS / 2; ++k) p.w[k] = 0;
#pragma unroll
  for (int i = 0; i < kChunk; ++i) {
    const int bit = i * BITS, k = bit >> 5, s = bit & 31;
    p.w[k] |= c[i] << s;
    if (s + BITS > 32) p.w[k + 1] |= c[i] >> (32 - s);  // a 6-bit code across two words
  }
  return p;
}

template <int BITS>
__device__ __forceinline__ void unpack(const Packed<BITS>& p, uint32_t (&c)[kChunk]) {
#pragma unroll
  for (int i = 0; i < kChunk; ++i) {
    const int bit = i * BITS, k = bit >> 5, s = bit & 31;
    uint32_t v = p.w[k] >> s;
    if (s + BITS > 32) v |= p.w[k + 1] << (32 - s);
    c[i] = v & ((1u << BITS) - 1u);
  }
}

// Vector store / load of a chunk's packed codes at an address aligned to data_align<BITS>().
template <int BITS>
__device__ __forceinline__ void store_packed_vec(uint8_t* __restrict__ dst, const Packed<BITS>& p) {
  if constexpr (BITS == 8) {
    *reinterpret_cast<uint4*>(dst) = make_uint4(p.w[0], p.w[1], p.w[2], p.w[3]);
  } else if constexpr (BITS == 4) {
    *reinterpret_cast<uint2*>(dst) = make_uint2(p.w[0], p.w[1]);
  } else {
#pragma unroll
    for (int k = 0; k < BITS / 2; ++k) reinterpret_cast<uint32_t*>(dst)[k] = p.w[k];
  }
}

template <int BITS>
__device__ __forceinline__ Packed<BITS> load_packed_vec(const uint8_t* __restrict__ src) {
  Packed<BITS> p;
  if constexpr (BITS == 8) {
    const uint4 q = __ldg(reinterpret_cast<const uint4*>(src));
    p.w[0] = q.x;
    p.w[1] = q.y;
    p.w[2] = q.z;
    p.w[3] = q.w;
  } else if constexpr (BITS == 4) {
    const uint2 q = __ldg(reinterpret_cast<const uint2*>(src));
    p.w[0] = q.x;
    p.w[1] = q.y;
  } else {
#pragma unroll
    for (int k = 0; k < BITS / 2; ++k) p.w[k] = __ldg(reinterpret_cast<const unsigned int*>(src) + k);
  }
  return p;
}

// The first nbytes bytes only (a row's last chunk; any address).
template <int BITS>
__device__ __forceinline__ void store_packed_bytes(uint8_t* __restrict__ dst, int nbytes, const Packed<BITS>& p) {
#pragma unroll
  for (int b = 0; b < 2 * BITS; ++b)
    if (b < nbytes) dst[b] = (uint8_t)(p.w[b >> 2] >> (8 * (b & 3)));
}

template <int BITS>
__device__ __forceinline__ Packed<BITS> load_packed_bytes(const uint8_t* __restrict__ src, int nbytes) {
  Packed<BITS> p;
#pragma unroll
  for (int k = 0; k < BITS / 2; ++k) p.w[k] = 0;
#pragma unroll
  for (int b = 0; b < 2 * BITS; ++b)
    if (b < nbytes) p.w[b >> 2] |= (uint32_t)__ldg(src + b) << (8 * (b & 3));
  return p;
}

// ---------------------------------------------------------------------------- decoding

// Every code's element value (decode_element), in shared memory: one load per
// element instead of the decode's integer steps (the kernels are otherwise bound
// by integer issue rather than by DRAM on an H100). At most 256 floats; with
// <= 32 entries (4- and 2-bit formats) the lookups have no bank conflicts.
template <int FMT>
struct DecodeTable {
  float value[1 << format_of(FMT).bits];

  __device__ __forceinline__ void fill() {
    constexpr Format f = format_of(FMT);
    for (int c = threadIdx.x; c < (1 << f.bits); c += blockDim.x) value[c] = decode_element((uint32_t)c, f);
    __syncthreads();
  }
};

// ---------------------------------------------------------------------------- kernels

// NaN as the canonical 0x7FC00000: a GPU's multiply gives 0x7FFFFFFF for NaN * s whatever the NaN in (the CPU
// keeps the operand's payload), so fp32 outputs would differ in their bits from the reference.
__device__ __forceinline__ float canonical_nan(float v) { return v != v ? __int_as_float(kCanonicalNaN) : v; }

struct QuantizeParams {
  const void* x;
  uint8_t* data;    // quantize: packed codes
  uint8_t* scales;  // quantize: scale bytes
  void* out;        // fake-quantize: the dequantized values, x's dtype
  Geometry g;
  int scale_mode;
  uint32_t key;  // mix32(seed)
};

// Quantize (FAKE = false: codes and scales) or fake-quantize (FAKE = true: the
// dequantized values) one chunk per thread: the body of a kernel launched with
// kThreads threads per CTA (mx_quantize_kernel below, or an NVRTC entry point).
template <int FMT, int DT, bool SR, bool FLAT, bool FAKE>
__device__ __forceinline__ void mx_quantize_body(const QuantizeParams& p) {
  constexpr Format f = format_of(FMT);
  const int lane = threadIdx.x & 31;
  const int lanes = 1 << p.g.log2_lanes;
  const int64_t stride = (int64_t)gridDim.x * kThreads;
  __shared__ DecodeTable<FMT> table;  // fake-quantize only
  if (FAKE) table.fill();
  // base is warp-uniform: every lane runs every iteration (the shuffles need the full warp).
  for (int64_t base = (int64_t)blockIdx.x * kThreads + (threadIdx.x & ~31); base < p.g.units; base += stride) {
    const int64_t u = base + lane;
    const Chunk c = locate<f.bits, FLAT>(p.g, u);

    float v[kChunk];
    if (FLAT && c.n == kChunk) {
      load_vec<DT>(p.x, c.x_off, v);
    } else {
      load_scalar<DT>(p.x, c.x_off, c.n, v);  // FLAT: n == 0 past the end, all zeros
    }

    // Block amax as fp32 bits: for |v| the unsigned order of the bits is the numeric
    // order, NaN and Inf above every finite value (scale_byte gives 0xFF for them).
    uint32_t amax = 0;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) amax = max(amax, f32_bits(v[i]) & 0x7FFFFFFFu);
    for (int off = 1; off < lanes; off <<= 1) amax = max(amax, __shfl_xor_sync(kFullMask, amax, off));

    const uint32_t byte = scale_byte(bits_f32(amax), f, p.scale_mode);
    const float inv = inv_scale_of(byte);
    const bool nan_block = byte == kE8M0NaN;
    if (!FAKE && c.n > 0 && (lane & (lanes - 1)) == 0) p.scales[u >> p.g.log2_lanes] = (uint8_t)byte;

    uint32_t codes[kChunk];
    const uint32_t index = (uint32_t)c.x_off;  // row * L + j0, wrapped as the reference's uint32
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const uint32_t rand = SR ? mix32((index + (uint32_t)i) ^ p.key) : 0u;
      codes[i] = encode_element(v[i], inv, nan_block, f, SR, rand);
    }

    if (FAKE) {
      const float s = scale_of(byte);  // NaN for a NaN block, whatever the codes
      float r[kChunk];
#pragma unroll
      for (int i = 0; i < kChunk; ++i) r[i] = canonical_nan(table.value[codes[i]] * s);
      if (needs_saturation(byte, f, DT)) {  // rare: a scale that can reach the dtype's top
#pragma unroll
        for (int i = 0; i < kChunk; ++i) r[i] = finish_decoded<uint32_t, float>(table.value[codes[i]], r[i], max_bits_of(DT));
      }
      if (FLAT && c.n == kChunk) store_vec<DT>(p.out, c.x_off, r);
      else store_scalar<DT>(p.out, c.x_off, c.n, r);
    } else {
      const Packed<f.bits> packed = pack<f.bits>(codes);
      if (FLAT && c.n == kChunk) store_packed_vec<f.bits>(p.data + c.data_off, packed);
      else store_packed_bytes<f.bits>(p.data + c.data_off, c.nbytes, packed);
    }
  }
}

struct DequantizeParams {
  const uint8_t* data;
  const uint8_t* scales;
  void* out;
  Geometry g;
};

// Dequantize one chunk per thread: the body of a kernel launched with kThreads threads per CTA.
template <int FMT, int DT, bool FLAT>
__device__ __forceinline__ void mx_dequantize_body(const DequantizeParams& p) {
  constexpr Format f = format_of(FMT);
  const int64_t stride = (int64_t)gridDim.x * kThreads;
  __shared__ DecodeTable<FMT> table;
  table.fill();
  for (int64_t u = (int64_t)blockIdx.x * kThreads + threadIdx.x; u < p.g.units; u += stride) {
    const Chunk c = locate<f.bits, FLAT>(p.g, u);
    if (c.n == 0) continue;  // a chunk past the end of a row's partial block
    const Packed<f.bits> packed = FLAT ? load_packed_vec<f.bits>(p.data + c.data_off)
                                       : load_packed_bytes<f.bits>(p.data + c.data_off, c.nbytes);
    const uint32_t byte = __ldg(p.scales + (u >> p.g.log2_lanes));
    const float s = scale_of(byte);
    uint32_t codes[kChunk];
    unpack<f.bits>(packed, codes);
    float r[kChunk];
#pragma unroll
    for (int i = 0; i < kChunk; ++i) r[i] = canonical_nan(table.value[codes[i]] * s);
    if (needs_saturation(byte, f, DT)) {  // rare: a scale that can reach the dtype's top
#pragma unroll
      for (int i = 0; i < kChunk; ++i) r[i] = finish_decoded<uint32_t, float>(table.value[codes[i]], r[i], max_bits_of(DT));
    }
    if (FLAT) store_vec<DT>(p.out, c.x_off, r);
    else store_scalar<DT>(p.out, c.x_off, c.n, r);
  }
}

// The kernels nvcc instantiates (mx_kernels.cu); NVRTC's extern "C" entry points
// (mx_kernels_rtc.cu) wrap the same bodies.
template <int FMT, int DT, bool SR, bool FLAT, bool FAKE>
__global__ void __launch_bounds__(kThreads) mx_quantize_kernel(const QuantizeParams p) {
  mx_quantize_body<FMT, DT, SR, FLAT, FAKE>(p);
}

template <int FMT, int DT, bool FLAT>
__global__ void __launch_bounds__(kThreads) mx_dequantize_kernel(const DequantizeParams p) {
  mx_dequantize_body<FMT, DT, FLAT>(p);
}

}  // namespace
}  // namespace cuda
}  // namespace slimops
