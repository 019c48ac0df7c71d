// Fused GAT attention on the CPU (OpenMP).
//
// Forward: one pass per destination row (rows spread over threads): the row's
// logits into a per-thread buffer, max and sum per head, then out = sum alpha * h
// accumulated in fp32. Saves only lse = max + log(sum) per (row, head).
// Backward, deterministic for any thread count, no atomics:
//   pass 1, per destination row i: delta[i] = g[i] . out[i], and grad_a_dst[i];
//   pass 2, per source node j over a transposed index (CSR positions grouped by
//   source, built by a stable counting sort): grad_h[j] and grad_a_src[j].
// alpha is recomputed from lse in both passes. The math (and the dropout hash) is
// kernels/gat/gat_math.cuh, shared with the CUDA kernels; the notation is that of
// python/slimops/gat/reference.py. Compiled once per instruction set (CMakeLists.txt,
// GAT_CPU_KERNELS); csrc/gat/bind_gat.cpp picks one at run time.
#include "csrc/gat/gat_cpu.h"

#include <math.h>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gat/gat_math.cuh"

namespace slimops {
namespace gat {
namespace SLIMOPS_ISA {
namespace {

int threads_of(const GatArgs& a) { return a.num_threads > 0 ? a.num_threads : 1; }

template <int DT, typename I>
void forward_t(const GatArgs& a, const ForwardPtrs& p) {
  const int64_t H = a.heads, C = a.channels, HC = H * C;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  float* lse = (float*)p.lse;
  const uint32_t key = seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
#pragma omp parallel num_threads(threads_of(a))
  {
    std::vector<float> logit, acc(HC), m(H), s(H);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < a.n_dst; ++i) {
      const int64_t start = indptr[i], deg = (int64_t)indptr[i + 1] - start;
      for (int64_t x = 0; x < HC; ++x) acc[x] = 0.0f;
      if (deg <= 0) {
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, 0.0f);
        for (int64_t h = 0; h < H; ++h) lse[i * H + h] = -INFINITY;
        continue;
      }
      if ((int64_t)logit.size() < deg * H) logit.resize(deg * H);
      for (int64_t h = 0; h < H; ++h) m[h] = -INFINITY, s[h] = 0.0f;
      for (int64_t k = 0; k < deg; ++k) {
        const int64_t j = indices[start + k];
        for (int64_t h = 0; h < H; ++h) {
          const float e = leaky(load<DT>((const void*)p.a_src, j * H + h) + load<DT>((const void*)p.a_dst, i * H + h),
                                a.negative_slope);
          logit[k * H + h] = e;
          m[h] = e > m[h] ? e : m[h];
        }
      }
      for (int64_t k = 0; k < deg; ++k)
        for (int64_t h = 0; h < H; ++h) {
          const float q = expf(logit[k * H + h] - m[h]);
          logit[k * H + h] = q;
          s[h] += q;
        }
      for (int64_t h = 0; h < H; ++h) lse[i * H + h] = m[h] + logf(s[h]);
      for (int64_t k = 0; k < deg; ++k) {
        const int64_t j = indices[start + k];
        const uint32_t ekey = drop ? edge_key(key, (uint64_t)(a.offset + start + k)) : 0u;
        for (int64_t h = 0; h < H; ++h) {
          float coef = logit[k * H + h] / s[h];
          if (drop) coef *= dropout_weight(ekey, (int)h, a.dropout, a.inv_keep);
          if (coef == 0.0f) continue;
          float* ac = acc.data() + h * C;
          const int64_t base = (j * H + h) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) ac[c] += coef * load<DT>((const void*)p.h, base + c);
        }
      }
      for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, acc[x]);
    }
  }
}

template <int DT, typename I>
void backward_t(const GatArgs& a, const BackwardPtrs& p) {
  const int64_t H = a.heads, C = a.channels, HC = H * C;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  const float* lse = (const float*)p.lse;
  float* delta = (float*)p.delta;
  int64_t* colptr = (int64_t*)p.colptr;
  I* csc_edge = (I*)p.csc_edge;
  const uint32_t key = seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
  const float slope = a.negative_slope;
  const void *g = (const void*)p.grad_out, *hf = (const void*)p.h;
  const void *as = (const void*)p.a_src, *ad = (const void*)p.a_dst;

  // Transposed index: a stable counting sort of CSR positions by source.
  for (int64_t j = 0; j <= a.n_src; ++j) colptr[j] = 0;
  for (int64_t k = 0; k < a.n_edges; ++k) colptr[(int64_t)indices[k] + 1]++;
  for (int64_t j = 0; j < a.n_src; ++j) colptr[j + 1] += colptr[j];
  {
    std::vector<int64_t> fill(colptr, colptr + a.n_src);
    for (int64_t k = 0; k < a.n_edges; ++k) csc_edge[fill[(int64_t)indices[k]]++] = (I)k;
  }

  // Pass 1: per destination row.
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads_of(a))
  for (int64_t i = 0; i < a.n_dst; ++i) {
    const int64_t start = indptr[i], end = indptr[i + 1];
    for (int64_t h = 0; h < H; ++h) {
      float d = 0.0f;
      for (int64_t c = 0; c < C; ++c) d += load<DT>(g, i * HC + h * C + c) * load<DT>((const void*)p.out, i * HC + h * C + c);
      delta[i * H + h] = d;
    }
    for (int64_t h = 0; h < H; ++h) {
      const float adst = load<DT>(ad, i * H + h), l = lse[i * H + h], d = delta[i * H + h];
      float acc = 0.0f;
      for (int64_t k = start; k < end; ++k) {
        const int64_t j = indices[k];
        const float z = load<DT>(as, j * H + h) + adst;
        const float alpha = expf(leaky(z, slope) - l);
        const float w = drop ? dropout_weight(edge_key(key, (uint64_t)(a.offset + k)), (int)h, a.dropout, a.inv_keep)
                             : 1.0f;
        float gh = 0.0f;
#pragma omp simd reduction(+ : gh)
        for (int64_t c = 0; c < C; ++c) gh += load<DT>(g, i * HC + h * C + c) * load<DT>(hf, (j * H + h) * C + c);
        acc += alpha * (w * gh - d) * leaky_grad(z, slope);
      }
      store<DT>((void*)p.grad_a_dst, i * H + h, acc);
    }
  }

  // Pass 2: per source node, over its out-edges in CSR order.
#pragma omp parallel num_threads(threads_of(a))
  {
    std::vector<float> acc(HC), gs(H);
#pragma omp for schedule(dynamic, 64)
    for (int64_t j = 0; j < a.n_src; ++j) {
      for (int64_t x = 0; x < HC; ++x) acc[x] = 0.0f;
      for (int64_t h = 0; h < H; ++h) gs[h] = 0.0f;
      for (int64_t q = colptr[j]; q < colptr[j + 1]; ++q) {
        const int64_t k = csc_edge[q];
        // the destination row of CSR position k: the last i with indptr[i] <= k
        int64_t lo = 0, hi = a.n_dst;
        while (hi - lo > 1) {
          const int64_t mid = (lo + hi) / 2;
          if ((int64_t)indptr[mid] <= k) lo = mid; else hi = mid;
        }
        const int64_t i = lo;
        const uint32_t ekey = drop ? edge_key(key, (uint64_t)(a.offset + k)) : 0u;
        for (int64_t h = 0; h < H; ++h) {
          const float z = load<DT>(as, j * H + h) + load<DT>(ad, i * H + h);
          const float alpha = expf(leaky(z, slope) - lse[i * H + h]);
          const float w = drop ? dropout_weight(ekey, (int)h, a.dropout, a.inv_keep) : 1.0f;
          const float aw = alpha * w;
          float gh = 0.0f;
          float* ac = acc.data() + h * C;
#pragma omp simd reduction(+ : gh)
          for (int64_t c = 0; c < C; ++c) {
            const float gv = load<DT>(g, i * HC + h * C + c);
            ac[c] += aw * gv;
            gh += gv * load<DT>(hf, (j * H + h) * C + c);
          }
          gs[h] += alpha * (w * gh - delta[i * H + h]) * leaky_grad(z, slope);
        }
      }
      for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.grad_h, j * HC + x, acc[x]);
      for (int64_t h = 0; h < H; ++h) store<DT>((void*)p.grad_a_src, j * H + h, gs[h]);
    }
  }
}

template <typename I>
void dispatch_forward(const GatArgs& a, const ForwardPtrs& p) {
  if (a.dtype == kF32) forward_t<kF32, I>(a, p);
  else if (a.dtype == kBF16) forward_t<kBF16, I>(a, p);
  else forward_t<kF16, I>(a, p);
}

template <typename I>
void dispatch_backward(const GatArgs& a, const BackwardPtrs& p) {
  if (a.dtype == kF32) backward_t<kF32, I>(a, p);
  else if (a.dtype == kBF16) backward_t<kBF16, I>(a, p);
  else backward_t<kF16, I>(a, p);
}

}  // namespace

void forward(const GatArgs& a, const ForwardPtrs& p) {
  if (a.index_bits == 32) dispatch_forward<int32_t>(a, p);
  else dispatch_forward<int64_t>(a, p);
}

void backward(const GatArgs& a, const BackwardPtrs& p) {
  if (a.index_bits == 32) dispatch_backward<int32_t>(a, p);
  else dispatch_backward<int64_t>(a, p);
}

}  // namespace SLIMOPS_ISA
}  // namespace gat
}  // namespace slimops
