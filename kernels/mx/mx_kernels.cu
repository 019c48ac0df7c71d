// MX quantize / dequantize / fake-quantize in CUDA, on the canonical layout: a
// contiguous (rows, L) input whose last axis is cut into blocks of 16, 32 or 64
// elements (the last block of a row may be partial); packed data (rows,
// ceil(L * bits / 8)), a little-endian bit stream per row (element 0 lowest);
// E8M0 scales (rows, ceil(L / block_size)).
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
// chunk ranges so that the whole warp takes part in the shuffles.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "mx_cuda.h"
#include "mx_element.cuh"

namespace slimops {
namespace cuda {
namespace {

using namespace slimops::mx;

constexpr int kChunk = 16;                // elements per thread
constexpr int kThreads = 256;             // threads per CTA
constexpr unsigned kFullMask = 0xFFFFFFFFu;
constexpr int64_t kMaxGrid = 1 << 30;     // CTAs at most (grid-stride beyond)

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

template <int DT>
__device__ __forceinline__ float half_to_f32(uint32_t h) {
  if constexpr (DT == kBF16) return bf16_to_f32((uint16_t)h);  // a shift
#if SLIMOPS_MX_HEADER_CVT
  return f16_to_f32((uint16_t)h);
#else
  return __half2float(__ushort_as_half((unsigned short)h));
#endif
}

template <int DT>
__device__ __forceinline__ uint32_t f32_to_half(float v) {
#if SLIMOPS_MX_HEADER_CVT
  return DT == kBF16 ? (uint32_t)f32_to_bf16(v) : (uint32_t)f32_to_f16(v);
#else
  // The hardware conversions give 0x7FFF for NaN; the header's (and torch's CPU casts) the
  // canonical quiet NaN: 0x7FC0 (bf16), 0x7E00 (fp16).
  if constexpr (DT == kBF16) return v != v ? 0x7FC0u : __bfloat16_as_ushort(__float2bfloat16_rn(v));
  else return v != v ? 0x7E00u : __half_as_ushort(__float2half_rn(v));
#endif
}

// Two values -> their 16-bit encodings, a in the low half (the lower address).
template <int DT>
__device__ __forceinline__ uint32_t f32x2_to_half2(float a, float b) {
#if SLIMOPS_MX_HEADER_CVT
  return f32_to_half<DT>(a) | (f32_to_half<DT>(b) << 16);
#else
  uint32_t w;
  if constexpr (DT == kBF16) w = bitcast<uint32_t>(__floats2bfloat162_rn(a, b));
  else w = bitcast<uint32_t>(__floats2half2_rn(a, b));
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

// Alignment (bytes) of the packed data that the FLAT path's vector accesses need.
constexpr int data_align(int bits) { return bits == 8 ? 16 : (bits == 4 ? 8 : 4); }

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
// dequantized values) one chunk per thread.
template <int FMT, int DT, bool SR, bool FLAT, bool FAKE>
__global__ void __launch_bounds__(kThreads) mx_quantize_kernel(const QuantizeParams p) {
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
      for (int i = 0; i < kChunk; ++i) r[i] = table.value[codes[i]] * s;
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

template <int FMT, int DT, bool FLAT>
__global__ void __launch_bounds__(kThreads) mx_dequantize_kernel(const DequantizeParams p) {
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
    for (int i = 0; i < kChunk; ++i) r[i] = table.value[codes[i]] * s;
    if (needs_saturation(byte, f, DT)) {  // rare: a scale that can reach the dtype's top
#pragma unroll
      for (int i = 0; i < kChunk; ++i) r[i] = finish_decoded<uint32_t, float>(table.value[codes[i]], r[i], max_bits_of(DT));
    }
    if (FLAT) store_vec<DT>(p.out, c.x_off, r);
    else store_scalar<DT>(p.out, c.x_off, c.n, r);
  }
}

// ---------------------------------------------------------------------------- host side

int log2_of(int v) {
  int l = 0;
  while ((1 << l) < v) ++l;
  return l;
}

Geometry geometry(int64_t rows, int64_t length, int block_size, int bits) {
  Geometry g;
  const int lanes = block_size / kChunk;
  const int64_t blocks_per_row = (length + block_size - 1) / block_size;
  g.length = length;
  g.chunks_per_row = blocks_per_row * lanes;
  g.units = rows * g.chunks_per_row;
  g.row_bytes = packed_bytes(bits, length);
  g.log2_lanes = log2_of(lanes);
  return g;
}

bool aligned(const void* p, int n) { return (reinterpret_cast<uintptr_t>(p) & (uintptr_t)(n - 1)) == 0; }

unsigned grid_for(int64_t threads) {
  int64_t blocks = (threads + kThreads - 1) / kThreads;
  return (unsigned)(blocks < kMaxGrid ? blocks : kMaxGrid);
}

template <int FMT, int DT, bool SR, bool FAKE>
cudaError_t launch_quantize(const QuantizeParams& p, bool flat, cudaStream_t stream) {
  const unsigned grid = grid_for(p.g.units);
  if (flat) mx_quantize_kernel<FMT, DT, SR, true, FAKE><<<grid, kThreads, 0, stream>>>(p);
  else mx_quantize_kernel<FMT, DT, SR, false, FAKE><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int FMT, int DT>
cudaError_t launch_dequantize(const DequantizeParams& p, bool flat, cudaStream_t stream) {
  const unsigned grid = grid_for(p.g.units);
  if (flat) mx_dequantize_kernel<FMT, DT, true><<<grid, kThreads, 0, stream>>>(p);
  else mx_dequantize_kernel<FMT, DT, false><<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <int FMT, bool FAKE>
cudaError_t quantize_by_dtype(const QuantizeParams& p, int dtype, bool sr, bool flat, cudaStream_t stream) {
  if (dtype == kF32) return sr ? launch_quantize<FMT, kF32, true, FAKE>(p, flat, stream)
                               : launch_quantize<FMT, kF32, false, FAKE>(p, flat, stream);
  if (dtype == kBF16) return sr ? launch_quantize<FMT, kBF16, true, FAKE>(p, flat, stream)
                                : launch_quantize<FMT, kBF16, false, FAKE>(p, flat, stream);
  return sr ? launch_quantize<FMT, kF16, true, FAKE>(p, flat, stream)
            : launch_quantize<FMT, kF16, false, FAKE>(p, flat, stream);
}

template <int FMT>
cudaError_t dequantize_by_dtype(const DequantizeParams& p, int dtype, bool flat, cudaStream_t stream) {
  if (dtype == kF32) return launch_dequantize<FMT, kF32>(p, flat, stream);
  if (dtype == kBF16) return launch_dequantize<FMT, kBF16>(p, flat, stream);
  return launch_dequantize<FMT, kF16>(p, flat, stream);
}

#define SLIMOPS_FORMAT_CASES(fmt, CALL)   \
  switch (fmt) {                          \
    case kFp8E4M3: return CALL(kFp8E4M3); \
    case kFp8E5M2: return CALL(kFp8E5M2); \
    case kFp6E3M2: return CALL(kFp6E3M2); \
    case kFp6E2M3: return CALL(kFp6E2M3); \
    case kFp4E2M1: return CALL(kFp4E2M1); \
    case kInt8: return CALL(kInt8);       \
    case kInt6: return CALL(kInt6);       \
    case kInt4: return CALL(kInt4);       \
    case kInt2: return CALL(kInt2);       \
    default: return cudaErrorInvalidValue; \
  }

template <bool FAKE>
cudaError_t run_quantize(const void* x, int dtype, int64_t rows, int64_t length, uint8_t* data, uint8_t* scales,
                         void* out, int fmt, int block_size, int scale_mode, bool stochastic, uint32_t seed,
                         cudaStream_t stream) {
  if (fmt < 0 || fmt >= kNumFormats || rows < 0 || length < 0) return cudaErrorInvalidValue;
  const int bits = format_of(fmt).bits;
  QuantizeParams p;
  p.x = x;
  p.data = data;
  p.scales = scales;
  p.out = out;
  p.g = geometry(rows, length, block_size, bits);
  p.scale_mode = scale_mode;
  p.key = mix32(seed);
  if (p.g.units == 0) return cudaSuccess;
  bool flat = length % block_size == 0 && aligned(x, 16);
  if (FAKE) flat = flat && aligned(out, 16);
  else flat = flat && aligned(data, data_align(bits));
#define CALL(F) quantize_by_dtype<F, FAKE>(p, dtype, stochastic, flat, stream)
  SLIMOPS_FORMAT_CASES(fmt, CALL)
#undef CALL
}

}  // namespace

cudaError_t quantize(const QuantizeArgs& a, cudaStream_t stream) {
  return run_quantize<false>(a.x, a.dtype, a.rows, a.length, a.data, a.scales, nullptr, a.fmt, a.block_size,
                             a.scale_mode, a.stochastic, a.seed, stream);
}

cudaError_t fake_quantize(const FakeQuantizeArgs& a, cudaStream_t stream) {
  return run_quantize<true>(a.x, a.dtype, a.rows, a.length, nullptr, nullptr, a.out, a.fmt, a.block_size,
                            a.scale_mode, a.stochastic, a.seed, stream);
}

cudaError_t dequantize(const DequantizeArgs& a, cudaStream_t stream) {
  if (a.fmt < 0 || a.fmt >= kNumFormats || a.rows < 0 || a.length < 0) return cudaErrorInvalidValue;
  const int bits = format_of(a.fmt).bits;
  DequantizeParams p;
  p.data = a.data;
  p.scales = a.scales;
  p.out = a.out;
  p.g = geometry(a.rows, a.length, a.block_size, bits);
  if (p.g.units == 0) return cudaSuccess;
  const bool flat = a.length % a.block_size == 0 && aligned(a.out, 16) &&
                    aligned(a.data, data_align(bits));
  const int fmt = a.fmt;
#define CALL(F) dequantize_by_dtype<F>(p, a.dtype, flat, stream)
  SLIMOPS_FORMAT_CASES(fmt, CALL)
#undef CALL
}

}  // namespace cuda
}  // namespace slimops
