// Fused GAT attention, CUDA C++. One warp per (node, head); lanes hold up to kMaxPerLane
// channels each (C <= 32 * kMaxPerLane). Notation and math: python/slimops/gat/reference.py.
//
// forward   (warp per destination row, head): lanes compute 32 logits at a time, online
//           softmax over the chunks, then each edge of the chunk is broadcast and the lanes
//           accumulate its h row; out = acc / s, lse = m + log s.
// bwd_dst   (warp per destination row, head): delta = g . out, grad_a_dst (and grad_a_edge).
// bwd_src   (warp per source node, head) over the transposed index: grad_h, grad_a_src.
// Warps walk the (node, head) pairs grid-stride; the grid is capped at 2^30 CTAs.
// No atomics: deterministic. Every read of the CSR is guarded (see gat_cuda.h).
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include "kernels/gat/gat_cuda.h"
#include "kernels/gat/gat_math.cuh"

namespace slimops {
namespace gat {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kMaxPerLane = 8;  // C <= 256
constexpr int64_t kMaxGrid = 1 << 30;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename I>
__device__ __forceinline__ void row_range(const I* indptr, int64_t i, int64_t n_edges, int64_t* s, int64_t* e) {
  int64_t a = (int64_t)indptr[i], b = (int64_t)indptr[i + 1];
  a = a < 0 ? 0 : (a > n_edges ? n_edges : a);
  b = b < a ? a : (b > n_edges ? n_edges : b);
  *s = a, *e = b;
}

struct Scalars {
  int64_t n_src, n_dst, heads, channels, n_edges, offset;
  float slope, p, inv_keep;
  uint32_t key;
  bool drop;
};

// The warps of a launch walk (node, head) pairs grid-stride: w = first, first + stride, ... < total.
// w is the same for every lane of a warp, so the warp-wide shuffles stay converged.
__device__ __forceinline__ int64_t first_warp() { return (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp; }
__device__ __forceinline__ int64_t warp_stride() { return (int64_t)gridDim.x * kWarpsPerBlock; }

// Forward. A lane's logit is -inf and its source -1 when its position is past the row or its source id is
// out of range (guarded, skipped); every valid edge takes part in the softmax with IEEE arithmetic, so a
// NaN or +Inf logit, or a row whose logits are all -inf, gives NaN (as the reference and the CPU kernel).
// A row without a valid edge gives zeros and lse = -inf.
template <int DT, typename I>
__global__ void fwd_kernel(Scalars sc, const void* h, const void* as, const void* ad, const void* ae,
                           const I* indptr, const I* indices, void* out, float* lse) {
  const int lane = threadIdx.x % kWarp;
  const int64_t H = sc.heads, C = sc.channels;
  for (int64_t w = first_warp(); w < sc.n_dst * H; w += warp_stride()) {
    const int64_t i = w / H, hd = w % H;
    int64_t start, end;
    row_range(indptr, i, sc.n_edges, &start, &end);
    const float adst = load<DT>(ad, i * H + hd);
    float acc[kMaxPerLane];
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) acc[r] = 0.0f;
    float m = -INFINITY, s = 0.0f;
    bool has = false, kept_any = false;  // the row has a valid edge; dropout kept one of them
    for (int64_t e0 = start; e0 < end; e0 += kWarp) {
      const int64_t k = e0 + lane;
      int64_t j = -1;
      float e = -INFINITY;
      if (k < end) {
        j = (int64_t)indices[k];
        if (j >= 0 && j < sc.n_src) {
          float z = load<DT>(as, j * H + hd) + adst;
          if (ae) z += load<DT>(ae, k * H + hd);
          e = leaky(z, sc.slope);
        } else {
          j = -1;
        }
      }
      if (!__any_sync(0xffffffffu, j >= 0)) continue;  // the whole chunk was guarded out
      has = true;
      const float m_new = fmaxf(m, warp_max(e));  // fmaxf skips a NaN logit; its q below is NaN
      const float scale = expf(m - m_new);        // NaN when m = m_new = -inf: all logits so far -inf
      float q = j >= 0 ? expf(e - m_new) : 0.0f;
      s = s * scale + warp_sum(q);
      if (sc.drop && j >= 0) {
        const float wt = dropout_weight(edge_key(sc.key, (uint64_t)(sc.offset + k)), (int)hd, sc.p, sc.inv_keep);
        if (wt == 0.0f) j = -1;  // dropped: its row is not read
        q *= wt;
      }
      kept_any = kept_any || __any_sync(0xffffffffu, j >= 0);
#pragma unroll
      for (int r = 0; r < kMaxPerLane; ++r) acc[r] *= scale;
      const int n = (int)((end - e0) < kWarp ? (end - e0) : kWarp);
      for (int t = 0; t < n; ++t) {
        const int64_t jt = __shfl_sync(0xffffffffu, j, t);
        const float qt = __shfl_sync(0xffffffffu, q, t);
        if (jt < 0) continue;
#pragma unroll
        for (int r = 0; r < kMaxPerLane; ++r) {
          const int64_t c = lane + r * kWarp;
          if (c < C) acc[r] += qt * load<DT>(h, (jt * H + hd) * C + c);
        }
      }
      m = m_new;
    }
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const int64_t c = lane + r * kWarp;
      // out = sum over kept edges of (q / s) h: zeros when dropout kept none (even if s is NaN)
      if (c < C) store<DT>(out, (i * H + hd) * C + c, kept_any ? acc[r] / s : 0.0f);
    }
    if (lane == 0) lse[i * H + hd] = has ? m + logf(s) : -INFINITY;
  }
}

// Backward, per (destination row, head): delta = g . out, the score gradient ds of each in-edge
// (grad_a_edge, when given) and their sum grad_a_dst.
template <int DT, typename I>
__global__ void bwd_dst_kernel(Scalars sc, const void* g, const void* h, const void* as, const void* ad,
                               const void* ae, const I* indptr, const I* indices, const void* out, const float* lse,
                               float* delta, void* grad_ad, void* grad_ae) {
  const int lane = threadIdx.x % kWarp;
  const int64_t H = sc.heads, C = sc.channels;
  for (int64_t w = first_warp(); w < sc.n_dst * H; w += warp_stride()) {
    const int64_t i = w / H, hd = w % H;
    int64_t start, end;
    row_range(indptr, i, sc.n_edges, &start, &end);
    float gi[kMaxPerLane];
    float d = 0.0f;
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const int64_t c = lane + r * kWarp;
      gi[r] = c < C ? load<DT>(g, (i * H + hd) * C + c) : 0.0f;
      if (c < C) d += gi[r] * load<DT>(out, (i * H + hd) * C + c);
    }
    d = warp_sum(d);
    if (lane == 0) delta[i * H + hd] = d;
    const float adst = load<DT>(ad, i * H + hd), l = lse[i * H + hd];
    float acc = 0.0f;  // lane 0's sum is the result
    for (int64_t k = start; k < end; ++k) {
      const int64_t j = (int64_t)indices[k];
      if (j < 0 || j >= sc.n_src) continue;  // guarded (grad_a_edge of this position stays 0)
      const float wt = sc.drop ? dropout_weight(edge_key(sc.key, (uint64_t)(sc.offset + k)), (int)hd, sc.p, sc.inv_keep)
                               : 1.0f;
      float gh = 0.0f;
      if (wt != 0.0f) {  // the same for every lane: the warp stays converged
#pragma unroll
        for (int r = 0; r < kMaxPerLane; ++r) {
          const int64_t c = lane + r * kWarp;
          if (c < C) gh += gi[r] * load<DT>(h, (j * H + hd) * C + c);
        }
        gh = warp_sum(gh);
      }
      float z = load<DT>(as, j * H + hd) + adst;
      if (ae) z += load<DT>(ae, k * H + hd);
      const float alpha = expf(leaky(z, sc.slope) - l);
      const float ds = alpha * (wt * gh - d) * leaky_grad(z, sc.slope);
      acc += ds;
      if (grad_ae && lane == 0) store<DT>(grad_ae, k * H + hd, ds);
    }
    if (lane == 0) store<DT>(grad_ad, i * H + hd, acc);
  }
}

// Backward, per (source node, head) over the transposed index: grad_h and grad_a_src. Entries whose row
// or CSR position is out of range (a malformed CSR) are skipped.
template <int DT, typename I>
__global__ void bwd_src_kernel(Scalars sc, const void* g, const void* h, const void* as, const void* ad,
                               const void* ae, const int64_t* colptr, const I* csc_edge, const int64_t* csc_row,
                               const float* lse, const float* delta, void* grad_h, void* grad_as) {
  const int lane = threadIdx.x % kWarp;
  const int64_t H = sc.heads, C = sc.channels;
  for (int64_t w = first_warp(); w < sc.n_src * H; w += warp_stride()) {
    const int64_t j = w / H, hd = w % H;
    int64_t start = colptr[j], end = colptr[j + 1];
    start = start < 0 ? 0 : (start > sc.n_edges ? sc.n_edges : start);
    end = end < start ? start : (end > sc.n_edges ? sc.n_edges : end);
    float hj[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const int64_t c = lane + r * kWarp;
      hj[r] = c < C ? load<DT>(h, (j * H + hd) * C + c) : 0.0f;
      acc[r] = 0.0f;
    }
    const float asj = load<DT>(as, j * H + hd);
    float gsum = 0.0f;
    for (int64_t q = start; q < end; ++q) {
      const int64_t k = (int64_t)csc_edge[q], i = csc_row[q];
      if (i < 0 || i >= sc.n_dst || k < 0 || k >= sc.n_edges) continue;
      float z = asj + load<DT>(ad, i * H + hd);
      if (ae) z += load<DT>(ae, k * H + hd);
      const float alpha = expf(leaky(z, sc.slope) - lse[i * H + hd]);
      const float wt = sc.drop ? dropout_weight(edge_key(sc.key, (uint64_t)(sc.offset + k)), (int)hd, sc.p, sc.inv_keep)
                               : 1.0f;
      float gh = 0.0f;
      if (wt != 0.0f) {  // warp-uniform
#pragma unroll
        for (int r = 0; r < kMaxPerLane; ++r) {
          const int64_t c = lane + r * kWarp;
          if (c < C) {
            const float gv = load<DT>(g, (i * H + hd) * C + c);
            acc[r] += alpha * wt * gv;
            gh += gv * hj[r];
          }
        }
        gh = warp_sum(gh);
      }
      gsum += alpha * (wt * gh - delta[i * H + hd]) * leaky_grad(z, sc.slope);
    }
#pragma unroll
    for (int r = 0; r < kMaxPerLane; ++r) {
      const int64_t c = lane + r * kWarp;
      if (c < C) store<DT>(grad_h, (j * H + hd) * C + c, acc[r]);
    }
    if (lane == 0) store<DT>(grad_as, j * H + hd, gsum);
  }
}

Scalars scalars_of(const GatArgs& a) {
  return Scalars{a.n_src, a.n_dst, a.heads, a.channels, a.n_edges, a.offset, a.negative_slope, a.dropout,
                 a.inv_keep, seed_key(a.seed), a.dropout > 0.0f};
}

// CTAs at most (kMaxGrid = 2^30 unless the caller asks for fewer, as the tests do to exercise the
// grid-stride loops); the kernels grid-stride beyond.
unsigned grid_for(int64_t warps, int64_t max_blocks) {
  const int64_t cap = max_blocks > 0 && max_blocks < kMaxGrid ? max_blocks : kMaxGrid;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return (unsigned)(blocks < cap ? blocks : cap);
}

template <int DT, typename I>
void launch_forward(const GatArgs& a, const ForwardPtrs& p, cudaStream_t st, int64_t max_blocks) {
  const Scalars sc = scalars_of(a);
  const int64_t warps = a.n_dst * a.heads;
  if (warps == 0) return;
  fwd_kernel<DT, I><<<grid_for(warps, max_blocks), kWarp * kWarpsPerBlock, 0, st>>>(
      sc, (const void*)p.h, (const void*)p.a_src, (const void*)p.a_dst, (const void*)p.a_edge, (const I*)p.indptr,
      (const I*)p.indices, (void*)p.out, (float*)p.lse);
}

template <int DT, typename I>
void launch_backward(const GatArgs& a, const BackwardPtrs& p, cudaStream_t st, int64_t max_blocks) {
  const Scalars sc = scalars_of(a);
  const int64_t wd = a.n_dst * a.heads, ws = a.n_src * a.heads;
  if (wd > 0)
    bwd_dst_kernel<DT, I><<<grid_for(wd, max_blocks), kWarp * kWarpsPerBlock, 0, st>>>(
        sc, (const void*)p.grad_out, (const void*)p.h, (const void*)p.a_src, (const void*)p.a_dst,
        (const void*)p.a_edge, (const I*)p.indptr, (const I*)p.indices, (const void*)p.out, (const float*)p.lse,
        (float*)p.work, (void*)p.grad_a_dst, (void*)p.grad_a_edge);
  if (ws > 0)
    bwd_src_kernel<DT, I><<<grid_for(ws, max_blocks), kWarp * kWarpsPerBlock, 0, st>>>(
        sc, (const void*)p.grad_out, (const void*)p.h, (const void*)p.a_src, (const void*)p.a_dst,
        (const void*)p.a_edge, (const int64_t*)p.colptr, (const I*)p.csc_edge, (const int64_t*)p.csc_row,
        (const float*)p.lse, (const float*)p.work, (void*)p.grad_h, (void*)p.grad_a_src);
}

template <typename I, typename Fn>
void by_dtype(int dtype, Fn&& fn) {
  if (dtype == kF32) fn(std::integral_constant<int, kF32>());
  else if (dtype == kBF16) fn(std::integral_constant<int, kBF16>());
  else fn(std::integral_constant<int, kF16>());
}

}  // namespace

cudaError_t forward_cuda(const GatArgs& a, const ForwardPtrs& p, cudaStream_t stream, int64_t max_blocks) {
  auto go = [&](auto dt) {
    if (a.index_bits == 32) launch_forward<decltype(dt)::value, int32_t>(a, p, stream, max_blocks);
    else launch_forward<decltype(dt)::value, int64_t>(a, p, stream, max_blocks);
  };
  by_dtype<int>(a.dtype, go);
  return cudaGetLastError();
}

cudaError_t backward_cuda(const GatArgs& a, const BackwardPtrs& p, cudaStream_t stream, int64_t max_blocks) {
  auto go = [&](auto dt) {
    if (a.index_bits == 32) launch_backward<decltype(dt)::value, int32_t>(a, p, stream, max_blocks);
    else launch_backward<decltype(dt)::value, int64_t>(a, p, stream, max_blocks);
  };
  by_dtype<int>(a.dtype, go);
  return cudaGetLastError();
}

}  // namespace gat
}  // namespace slimops
