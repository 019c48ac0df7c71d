// Fused GATv2 attention, CUDA C++. One warp per (node, head) (per chunk of CSR positions for the edge
// pass); lanes hold up to kMaxPerLane channels each (C <= 32 * kMaxPerLane). Notation and math:
// python/slimops/gat/v2_reference.py.
//
// forward   (warp per destination row, head): per in-edge the lanes form s = xl[j] + xr[i] (+ the edge
//           term w_edge @ edge_attr[k]) for their channels, e = att . leaky(s) by a warp sum, an online
//           softmax (rescaled when the maximum grows) and acc += w * exp(e - m) * xl[j]; lse = m + log l.
// bwd_dst   (warp per destination row, head): delta = g . out; per edge p = alpha * w and de to the
//           workspace, grad_xr.
// bwd_edge  (warp per chunk of CSR positions, all heads): grad_edge_attr (fp32), and the chunk's sums of
//           grad_att and grad_w_edge (added over chunks by torch).
// bwd_src   (warp per source node, head) over the transposed index: grad_xl = sum p * g[i] + ds.
// No atomics: deterministic. Every read of the CSR is guarded (see gatv2_cuda.h).
#include <math.h>
#include <stdint.h>

#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/gat/gat_math.cuh"
#include "kernels/gat/gatv2_cuda.h"

namespace slimops {
namespace gat {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kMaxPerLane = 8;  // C <= 256

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

struct Scalars {
  int64_t n_src, n_dst, heads, channels, n_edges, edge_dim, chunk, offset;
  float slope, p, inv_keep;
  uint32_t key;
  bool drop;
};

Scalars scalars_of(const Gatv2Args& a) {
  const GatArgs& g = a.g;
  return Scalars{g.n_src, g.n_dst, g.heads, g.channels, g.n_edges, a.edge_dim, a.chunk, g.offset,
                 g.negative_slope, g.dropout, g.inv_keep, seed_key(g.seed), g.dropout > 0.0f};
}

// This lane's channels of one row of an [N, H, C] tensor (zeros past C).
template <int DT>
__device__ __forceinline__ void lane_row(const void* t, int64_t r, int64_t hd, const Scalars& sc, int lane,
                                         float* dst) {
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) {
    const int64_t c = lane + q * kWarp;
    dst[q] = c < sc.channels ? load<DT>(t, (r * sc.heads + hd) * sc.channels + c) : 0.0f;
  }
}

// s = v + xr (+ sum_d edge_attr[k, d] * w_edge[hd * C + c, d]) for this lane's channels.
template <int DT>
__device__ __forceinline__ void pre_activation(const float* v, const float* xr, const void* ea, const void* w,
                                               int64_t k, int64_t hd, const Scalars& sc, int lane, float* s) {
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) s[q] = v[q] + xr[q];
  for (int64_t d = 0; d < sc.edge_dim; ++d) {
    const float a = load<DT>(ea, k * sc.edge_dim + d);
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) {
      const int64_t c = lane + q * kWarp;
      if (c < sc.channels) s[q] += a * load<DT>(w, (hd * sc.channels + c) * sc.edge_dim + d);
    }
  }
}

__device__ __forceinline__ float score(const float* s, const float* att, float slope) {
  float e = 0.0f;
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) e += att[q] * leaky(s[q], slope);
  return warp_sum(e);
}

template <int DT, typename I>
__global__ void fwd_kernel(Scalars sc, const void* xl, const void* xr, const void* att, const void* ea, const void* w,
                           const I* indptr, const I* indices, void* out, float* lse) {
  const int lane = threadIdx.x % kWarp;
  const int64_t wid = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (wid >= sc.n_dst * sc.heads) return;
  const int64_t i = wid / sc.heads, hd = wid % sc.heads;
  const int64_t start = clamp64((int64_t)indptr[i], 0, sc.n_edges);
  const int64_t end = clamp64((int64_t)indptr[i + 1], start, sc.n_edges);
  float xri[kMaxPerLane], a[kMaxPerLane], v[kMaxPerLane], s[kMaxPerLane], acc[kMaxPerLane];
  lane_row<DT>(xr, i, hd, sc, lane, xri);
  lane_row<DT>(att, 0, hd, sc, lane, a);
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) acc[q] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  for (int64_t k = start; k < end; ++k) {
    const int64_t j = (int64_t)indices[k];
    if (j < 0 || j >= sc.n_src) continue;
    lane_row<DT>(xl, j, hd, sc, lane, v);
    pre_activation<DT>(v, xri, ea, w, k, hd, sc, lane, s);
    const float e = score(s, a, sc.slope);
    if (e > m) {
      const float f = expf(m - e);
      l *= f;
#pragma unroll
      for (int q = 0; q < kMaxPerLane; ++q) acc[q] *= f;
      m = e;
    }
    float qk = expf(e - m);
    l += qk;
    if (sc.drop) qk *= dropout_weight(edge_key(sc.key, (uint64_t)(sc.offset + k)), (int)hd, sc.p, sc.inv_keep);
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) acc[q] += qk * v[q];
  }
  const bool has = l > 0.0f;
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) {
    const int64_t c = lane + q * kWarp;
    if (c < sc.channels) store<DT>(out, (i * sc.heads + hd) * sc.channels + c, has ? acc[q] / l : 0.0f);
  }
  if (lane == 0) lse[i * sc.heads + hd] = has ? m + logf(l) : -INFINITY;
}

template <int DT, typename I>
__global__ void bwd_dst_kernel(Scalars sc, const void* g, const void* xl, const void* xr, const void* att,
                               const void* ea, const void* w, const I* indptr, const I* indices, const void* out,
                               const float* lse, float* ws, void* grad_xr) {
  const int lane = threadIdx.x % kWarp;
  const int64_t wid = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (wid >= sc.n_dst * sc.heads) return;
  const int64_t i = wid / sc.heads, hd = wid % sc.heads, H = sc.heads;
  const int64_t start = clamp64((int64_t)indptr[i], 0, sc.n_edges);
  const int64_t end = clamp64((int64_t)indptr[i + 1], start, sc.n_edges);
  float gi[kMaxPerLane], oi[kMaxPerLane], xri[kMaxPerLane], a[kMaxPerLane], v[kMaxPerLane], s[kMaxPerLane],
      gxr[kMaxPerLane];
  lane_row<DT>(g, i, hd, sc, lane, gi);
  lane_row<DT>(out, i, hd, sc, lane, oi);
  lane_row<DT>(xr, i, hd, sc, lane, xri);
  lane_row<DT>(att, 0, hd, sc, lane, a);
  float d = 0.0f;
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) d += gi[q] * oi[q], gxr[q] = 0.0f;
  d = warp_sum(d);
  const float l = lse[i * H + hd];
  for (int64_t k = start; k < end; ++k) {
    const int64_t j = (int64_t)indices[k];
    if (j < 0 || j >= sc.n_src) continue;
    lane_row<DT>(xl, j, hd, sc, lane, v);
    pre_activation<DT>(v, xri, ea, w, k, hd, sc, lane, s);
    const float e = score(s, a, sc.slope);
    float gv = 0.0f;
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) gv += gi[q] * v[q];
    gv = warp_sum(gv);
    const float alpha = expf(e - l);
    const float wt = sc.drop ? dropout_weight(edge_key(sc.key, (uint64_t)(sc.offset + k)), (int)hd, sc.p, sc.inv_keep)
                             : 1.0f;
    const float de = alpha * (wt * gv - d);
    if (lane == 0) ws[k * H + hd] = alpha * wt, ws[(sc.n_edges + k) * H + hd] = de;
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) gxr[q] += de * a[q] * leaky_grad(s[q], sc.slope);
  }
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) {
    const int64_t c = lane + q * kWarp;
    if (c < sc.channels) store<DT>(grad_xr, (i * H + hd) * sc.channels + c, gxr[q]);
  }
}

template <int DT, typename I>
__global__ void bwd_edge_kernel(Scalars sc, const void* xl, const void* xr, const void* att, const void* ea,
                                const void* w, const I* row, const I* indices, const float* ws, float* gea,
                                float* partial_att, float* partial_w) {
  const int lane = threadIdx.x % kWarp;
  const int64_t b = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int64_t n_chunks = (sc.n_edges + sc.chunk - 1) / sc.chunk;
  if (b >= n_chunks) return;
  const int64_t H = sc.heads, C = sc.channels, D = sc.edge_dim;
  const int64_t lo = b * sc.chunk, hi = lo + sc.chunk < sc.n_edges ? lo + sc.chunk : sc.n_edges;
  float a[kMaxPerLane], v[kMaxPerLane], xri[kMaxPerLane], s[kMaxPerLane], pa[kMaxPerLane];
  for (int64_t hd = 0; hd < H; ++hd) {
    lane_row<DT>(att, 0, hd, sc, lane, a);
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) pa[q] = 0.0f;
    float* pw = partial_w + (b * H + hd) * C * D;  // this warp's slab: lanes own distinct channels
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t j = (int64_t)indices[k], i = (int64_t)row[k];
      if (j < 0 || j >= sc.n_src || i < 0 || i >= sc.n_dst) continue;
      lane_row<DT>(xl, j, hd, sc, lane, v);
      lane_row<DT>(xr, i, hd, sc, lane, xri);
      pre_activation<DT>(v, xri, ea, w, k, hd, sc, lane, s);
      const float de = ws[(sc.n_edges + k) * H + hd];
      float ds[kMaxPerLane];
#pragma unroll
      for (int q = 0; q < kMaxPerLane; ++q) {
        ds[q] = de * a[q] * leaky_grad(s[q], sc.slope);
        pa[q] += de * leaky(s[q], sc.slope);
      }
      for (int64_t d = 0; d < D; ++d) {
        const float ead = load<DT>(ea, k * D + d);
        float ge = 0.0f;
#pragma unroll
        for (int q = 0; q < kMaxPerLane; ++q) {
          const int64_t c = lane + q * kWarp;
          if (c < C) {
            ge += load<DT>(w, (hd * C + c) * D + d) * ds[q];
            pw[c * D + d] += ds[q] * ead;
          }
        }
        ge = warp_sum(ge);
        if (lane == 0) gea[k * D + d] += ge;
      }
    }
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) {
      const int64_t c = lane + q * kWarp;
      if (c < C) partial_att[(b * H + hd) * C + c] = pa[q];
    }
  }
}

template <int DT, typename I>
__global__ void bwd_src_kernel(Scalars sc, const void* g, const void* xl, const void* xr, const void* att,
                               const void* ea, const void* w, const int64_t* colptr, const I* csc_edge,
                               const int64_t* csc_row, const float* ws, void* grad_xl) {
  const int lane = threadIdx.x % kWarp;
  const int64_t wid = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  if (wid >= sc.n_src * sc.heads) return;
  const int64_t j = wid / sc.heads, hd = wid % sc.heads, H = sc.heads;
  const int64_t start = clamp64(colptr[j], 0, sc.n_edges), end = clamp64(colptr[j + 1], start, sc.n_edges);
  float v[kMaxPerLane], a[kMaxPerLane], xri[kMaxPerLane], gi[kMaxPerLane], s[kMaxPerLane], acc[kMaxPerLane];
  lane_row<DT>(xl, j, hd, sc, lane, v);
  lane_row<DT>(att, 0, hd, sc, lane, a);
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) acc[q] = 0.0f;
  for (int64_t q0 = start; q0 < end; ++q0) {
    const int64_t k = (int64_t)csc_edge[q0], i = (int64_t)csc_row[q0];
    if (i < 0 || i >= sc.n_dst || k < 0 || k >= sc.n_edges) continue;
    lane_row<DT>(xr, i, hd, sc, lane, xri);
    lane_row<DT>(g, i, hd, sc, lane, gi);
    pre_activation<DT>(v, xri, ea, w, k, hd, sc, lane, s);
    const float pk = ws[k * H + hd], de = ws[(sc.n_edges + k) * H + hd];
#pragma unroll
    for (int q = 0; q < kMaxPerLane; ++q) acc[q] += pk * gi[q] + de * a[q] * leaky_grad(s[q], sc.slope);
  }
#pragma unroll
  for (int q = 0; q < kMaxPerLane; ++q) {
    const int64_t c = lane + q * kWarp;
    if (c < sc.channels) store<DT>(grad_xl, (j * H + hd) * sc.channels + c, acc[q]);
  }
}

int64_t blocks_for(int64_t warps) { return (warps + kWarpsPerBlock - 1) / kWarpsPerBlock; }
constexpr int kThreads = kWarp * kWarpsPerBlock;

template <int DT, typename I>
void launch_forward(const Gatv2Args& a, const Gatv2ForwardPtrs& p, cudaStream_t st) {
  const Scalars sc = scalars_of(a);
  const int64_t warps = sc.n_dst * sc.heads;
  if (warps == 0) return;
  fwd_kernel<DT, I><<<(unsigned)blocks_for(warps), kThreads, 0, st>>>(
      sc, (const void*)p.xl, (const void*)p.xr, (const void*)p.att, (const void*)p.edge_attr, (const void*)p.w_edge,
      (const I*)p.indptr, (const I*)p.indices, (void*)p.out, (float*)p.lse);
}

template <int DT, typename I>
void launch_backward(const Gatv2Args& a, const Gatv2CudaBackwardPtrs& p, cudaStream_t st) {
  const Scalars sc = scalars_of(a);
  const void *xl = (const void*)p.xl, *xr = (const void*)p.xr, *att = (const void*)p.att;
  const void *ea = (const void*)p.edge_attr, *w = (const void*)p.w_edge;
  const int64_t wd = sc.n_dst * sc.heads, ws_ = sc.n_src * sc.heads;
  const int64_t n_chunks = (sc.n_edges + sc.chunk - 1) / sc.chunk;
  if (wd > 0)
    bwd_dst_kernel<DT, I><<<(unsigned)blocks_for(wd), kThreads, 0, st>>>(
        sc, (const void*)p.grad_out, xl, xr, att, ea, w, (const I*)p.indptr, (const I*)p.indices,
        (const void*)p.out, (const float*)p.lse, (float*)p.ws, (void*)p.grad_xr);
  if (n_chunks > 0)
    bwd_edge_kernel<DT, I><<<(unsigned)blocks_for(n_chunks), kThreads, 0, st>>>(
        sc, xl, xr, att, ea, w, (const I*)p.row, (const I*)p.indices, (const float*)p.ws, (float*)p.gea,
        (float*)p.partial_att, (float*)p.partial_w);
  if (ws_ > 0)
    bwd_src_kernel<DT, I><<<(unsigned)blocks_for(ws_), kThreads, 0, st>>>(
        sc, (const void*)p.grad_out, xl, xr, att, ea, w, (const int64_t*)p.colptr, (const I*)p.csc_edge,
        (const int64_t*)p.csc_row, (const float*)p.ws, (void*)p.grad_xl);
}

template <typename Fn>
void by_types(const Gatv2Args& a, Fn&& fn) {
  auto with_index = [&](auto dt) {
    if (a.g.index_bits == 32) fn(dt, int32_t());
    else fn(dt, int64_t());
  };
  if (a.g.dtype == kF32) with_index(std::integral_constant<int, kF32>());
  else if (a.g.dtype == kBF16) with_index(std::integral_constant<int, kBF16>());
  else with_index(std::integral_constant<int, kF16>());
}

}  // namespace

cudaError_t gatv2_forward_cuda(const Gatv2Args& a, const Gatv2ForwardPtrs& p, cudaStream_t stream) {
  by_types(a, [&](auto dt, auto idx) { launch_forward<decltype(dt)::value, decltype(idx)>(a, p, stream); });
  return cudaGetLastError();
}

cudaError_t gatv2_backward_cuda(const Gatv2Args& a, const Gatv2CudaBackwardPtrs& p, cudaStream_t stream) {
  by_types(a, [&](auto dt, auto idx) { launch_backward<decltype(dt)::value, decltype(idx)>(a, p, stream); });
  return cudaGetLastError();
}

}  // namespace gat
}  // namespace slimops
