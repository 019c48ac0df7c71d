// Fused GATv2 attention on the CPU (OpenMP). Notation and math: python/slimops/gat/v2_reference.py.
//
// Forward, one pass per destination row (rows spread over threads): per in-edge, the row xl[j] is
// read once into fp32, s = xl[j] + xr[i] (+ the edge term w_edge @ edge_attr[k], computed here from
// edge_attr's D columns), e = att . leaky(s) per head, and an online softmax (the accumulator is
// rescaled when a head's maximum grows) adds w * exp(e - m) * xl[j]. Saves only lse per (row, head).
// Backward, deterministic for any thread count, no atomics:
//   pass 1, per fixed chunk of destination rows: delta = g . out, and per edge alpha (from lse),
//     de, ds = de * att * leaky'(s): grad_xr[i], grad_edge_attr[k] = w_edge^T ds, and the chunk's
//     sums of grad_att and grad_w_edge; p = alpha * w and de go to a workspace [2, E, H];
//   the chunk sums are added in chunk order (the chunks do not depend on the thread count);
//   pass 2, per source node j over the transposed index: grad_xl[j] = sum p * g[i] + ds.
// The dropout hash, leaky ReLU and the fp32 / bf16 / fp16 loads are kernels/gat/gat_math.cuh's, shared
// with the GAT op. Compiled once per instruction set (CMakeLists.txt, GAT_CPU_KERNELS).
#include "csrc/gat/gatv2_cpu.h"

#include <math.h>

#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gat/gat_math.cuh"

namespace slimops {
namespace gatv2 {
namespace SLIMOPS_ISA {
namespace {

using gat::Gatv2Args;
using gat::Gatv2BackwardPtrs;
using gat::Gatv2ForwardPtrs;
using gat::kBF16;
using gat::kF16;
using gat::kF32;
using gat::leaky;
using gat::leaky_grad;
using gat::load;
using gat::store;

int threads_of(const Gatv2Args& a) { return a.g.num_threads > 0 ? a.g.num_threads : 1; }

template <int DT>
inline void load_row(const void* src, int64_t base, int64_t n, float* dst) {
#pragma omp simd
  for (int64_t x = 0; x < n; ++x) dst[x] = load<DT>(src, base + x);
}

// Prefetch one row of an [N, H*C] tensor: the gathers of xl[j] (and in pass 2 of xr[i], g[i]) are random
// reads that miss the cache, so each loop asks for the row kAhead edges ahead.
constexpr int64_t kAhead = 4;

template <int DT>
inline void prefetch_row(const void* base, int64_t row, int64_t n) {
  const int64_t bytes = n * (DT == kF32 ? 4 : 2);
  const char* p = (const char*)base + row * bytes;
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
}

// att as fp32 [H*C] and w_edge transposed to fp32 [D][H*C] (contiguous over H*C for the edge term).
struct Consts {
  std::vector<float> att, wt;
};

template <int DT>
Consts consts_of(const Gatv2Args& a, uintptr_t att, uintptr_t w_edge) {
  const int64_t HC = a.g.heads * a.g.channels, D = a.edge_dim;
  Consts k;
  k.att.resize(HC);
  load_row<DT>((const void*)att, 0, HC, k.att.data());
  k.wt.resize(D * HC);
  for (int64_t x = 0; x < HC; ++x)
    for (int64_t d = 0; d < D; ++d) k.wt[d * HC + x] = load<DT>((const void*)w_edge, x * D + d);
  return k;
}

// s = v + xr (+ sum_d edge_attr[k, d] * wt[d]): the pre-activation of edge k, all heads.
template <int DT>
inline void pre_activation(const float* v, const float* xr, const void* ea, int64_t k, int64_t D, int64_t HC,
                           const float* wt, float* s) {
#pragma omp simd
  for (int64_t x = 0; x < HC; ++x) s[x] = v[x] + xr[x];
  for (int64_t d = 0; d < D; ++d) {
    const float a = load<DT>(ea, k * D + d);
    const float* w = wt + d * HC;
#pragma omp simd
    for (int64_t x = 0; x < HC; ++x) s[x] += a * w[x];
  }
}

// e = att . leaky(s) over one head's C channels.
inline float head_score(const float* s, const float* att, int64_t C, float slope) {
  float e = 0.0f;
#pragma omp simd reduction(+ : e)
  for (int64_t c = 0; c < C; ++c) e += att[c] * leaky(s[c], slope);
  return e;
}

template <int DT, typename I>
void forward_t(const Gatv2Args& A, const Gatv2ForwardPtrs& p) {
  const gat::GatArgs& a = A.g;
  const int64_t H = a.heads, C = a.channels, HC = H * C, D = A.edge_dim;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  float* lse = (float*)p.lse;
  const Consts K = consts_of<DT>(A, p.att, p.w_edge);
  const uint32_t key = gat::seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
  const float slope = a.negative_slope;
#pragma omp parallel num_threads(threads_of(A))
  {
    std::vector<float> buf(4 * HC + 2 * H);
    float *xr = buf.data(), *v = xr + HC, *s = v + HC, *acc = s + HC, *m = acc + HC, *l = m + H;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < a.n_dst; ++i) {
      const int64_t start = indptr[i], end = indptr[i + 1];
      if (end <= start) {
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, 0.0f);
        for (int64_t h = 0; h < H; ++h) lse[i * H + h] = -INFINITY;
        continue;
      }
      load_row<DT>((const void*)p.xr, i * HC, HC, xr);
      for (int64_t x = 0; x < HC; ++x) acc[x] = 0.0f;
      for (int64_t h = 0; h < H; ++h) m[h] = -INFINITY, l[h] = 0.0f;
      for (int64_t k = start; k < end; ++k) {
        const int64_t j = indices[k];
        if (k + kAhead < a.n_edges) prefetch_row<DT>((const void*)p.xl, indices[k + kAhead], HC);
        load_row<DT>((const void*)p.xl, j * HC, HC, v);
        pre_activation<DT>(v, xr, (const void*)p.edge_attr, k, D, HC, K.wt.data(), s);
        const uint32_t ekey = drop ? gat::edge_key(key, (uint64_t)(a.offset + k)) : 0u;
        for (int64_t h = 0; h < H; ++h) {
          const float e = head_score(s + h * C, K.att.data() + h * C, C, slope);
          float* ac = acc + h * C;
          if (e > m[h]) {  // a new maximum: rescale what was summed so far
            const float f = expf(m[h] - e);
            l[h] *= f;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) ac[c] *= f;
            m[h] = e;
          }
          float q = expf(e - m[h]);
          l[h] += q;
          if (drop) q *= gat::dropout_weight(ekey, (int)h, a.dropout, a.inv_keep);
          if (q == 0.0f) continue;
          const float* vh = v + h * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) ac[c] += q * vh[c];
        }
      }
      for (int64_t h = 0; h < H; ++h) {
        const float inv = 1.0f / l[h];
        for (int64_t c = 0; c < C; ++c) store<DT>((void*)p.out, i * HC + h * C + c, acc[h * C + c] * inv);
        lse[i * H + h] = m[h] + logf(l[h]);
      }
    }
  }
}

// A stable counting sort of CSR positions by source: colptr, csc_edge (CSR position), csc_row (its row).
template <typename I>
void transpose_index(const Gatv2Args& A, const I* indptr, const I* indices, int64_t* colptr, I* csc_edge, I* csc_row) {
  const gat::GatArgs& a = A.g;
  for (int64_t j = 0; j <= a.n_src; ++j) colptr[j] = 0;
  for (int64_t k = 0; k < a.n_edges; ++k) colptr[(int64_t)indices[k] + 1]++;
  for (int64_t j = 0; j < a.n_src; ++j) colptr[j + 1] += colptr[j];
  std::vector<int64_t> fill(colptr, colptr + a.n_src);
  for (int64_t i = 0; i < a.n_dst; ++i)
    for (int64_t k = indptr[i]; k < (int64_t)indptr[i + 1]; ++k) {
      const int64_t q = fill[(int64_t)indices[k]]++;
      csc_edge[q] = (I)k;
      csc_row[q] = (I)i;
    }
}

template <int DT, typename I>
void backward_t(const Gatv2Args& A, const Gatv2BackwardPtrs& p) {
  const gat::GatArgs& a = A.g;
  const int64_t H = a.heads, C = a.channels, HC = H * C, D = A.edge_dim, E = a.n_edges;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  const float* lse = (const float*)p.lse;
  int64_t* colptr = (int64_t*)p.colptr;
  I* csc_edge = (I*)p.csc_edge;
  I* csc_row = (I*)p.csc_row;
  float* ws_p = (float*)p.ws;
  float* ws_de = ws_p + E * H;
  float* partial = (float*)p.partial;
  const int64_t R = A.chunk, n_chunks = (a.n_dst + R - 1) / R, width = HC * (1 + D);
  const Consts K = consts_of<DT>(A, p.att, p.w_edge);
  const float* att = K.att.data();
  const float* wt = K.wt.data();
  const uint32_t key = gat::seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
  const float slope = a.negative_slope;
  const void *g = (const void*)p.grad_out, *ea = (const void*)p.edge_attr;

  transpose_index<I>(A, indptr, indices, colptr, csc_edge, csc_row);

  // Pass 1: per chunk of destination rows.
#pragma omp parallel num_threads(threads_of(A))
  {
    std::vector<float> buf(6 * HC + H);
    float *gi = buf.data(), *xr = gi + HC, *v = xr + HC, *s = v + HC, *ds = s + HC, *gxr = ds + HC, *dl = gxr + HC;
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      float* patt = partial + chunk * width;  // [HC], then [D][HC]
      float* pw = patt + HC;
      for (int64_t x = 0; x < width; ++x) patt[x] = 0.0f;
      const int64_t i_end = (chunk + 1) * R < a.n_dst ? (chunk + 1) * R : a.n_dst;
      for (int64_t i = chunk * R; i < i_end; ++i) {
        const int64_t start = indptr[i], end = indptr[i + 1];
        load_row<DT>(g, i * HC, HC, gi);
        load_row<DT>((const void*)p.xr, i * HC, HC, xr);
        for (int64_t h = 0; h < H; ++h) {
          float d = 0.0f;
          for (int64_t c = 0; c < C; ++c) d += gi[h * C + c] * load<DT>((const void*)p.out, i * HC + h * C + c);
          dl[h] = d;
        }
        for (int64_t x = 0; x < HC; ++x) gxr[x] = 0.0f;
        for (int64_t k = start; k < end; ++k) {
          const int64_t j = indices[k];
          if (k + kAhead < E) prefetch_row<DT>((const void*)p.xl, indices[k + kAhead], HC);
          load_row<DT>((const void*)p.xl, j * HC, HC, v);
          pre_activation<DT>(v, xr, ea, k, D, HC, wt, s);
          const uint32_t ekey = drop ? gat::edge_key(key, (uint64_t)(a.offset + k)) : 0u;
          for (int64_t h = 0; h < H; ++h) {
            const float *sh = s + h * C, *ah = att + h * C, *gh = gi + h * C, *vh = v + h * C;
            float e = 0.0f, gv = 0.0f;
#pragma omp simd reduction(+ : e, gv)
            for (int64_t c = 0; c < C; ++c) {
              e += ah[c] * leaky(sh[c], slope);
              gv += gh[c] * vh[c];
            }
            const float alpha = expf(e - lse[i * H + h]);
            const float w = drop ? gat::dropout_weight(ekey, (int)h, a.dropout, a.inv_keep) : 1.0f;
            const float de = alpha * (w * gv - dl[h]);
            ws_p[k * H + h] = alpha * w;
            ws_de[k * H + h] = de;
            float *dsh = ds + h * C, *gx = gxr + h * C, *pa = patt + h * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const float dsc = de * ah[c] * leaky_grad(sh[c], slope);
              dsh[c] = dsc;
              gx[c] += dsc;
              pa[c] += de * leaky(sh[c], slope);
            }
          }
          for (int64_t d = 0; d < D; ++d) {  // the edge term: grad_edge_attr[k] and grad_w_edge
            const float* w = wt + d * HC;
            float* pwd = pw + d * HC;
            const float ead = load<DT>(ea, k * D + d);
            float ge = 0.0f;
#pragma omp simd reduction(+ : ge)
            for (int64_t x = 0; x < HC; ++x) {
              ge += w[x] * ds[x];
              pwd[x] += ead * ds[x];
            }
            store<DT>((void*)p.grad_edge_attr, k * D + d, ge);
          }
        }
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.grad_xr, i * HC + x, gxr[x]);
      }
    }
  }

  // The chunk sums, added in chunk order: grad_att [HC] and grad_w_edge [HC][D].
#pragma omp parallel for num_threads(threads_of(A))
  for (int64_t x = 0; x < width; ++x) {
    float t = 0.0f;
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) t += partial[chunk * width + x];
    if (x < HC) store<DT>((void*)p.grad_att, x, t);
    else store<DT>((void*)p.grad_w_edge, ((x - HC) % HC) * D + (x - HC) / HC, t);
  }

  // Pass 2: per source node, over its out-edges in CSR order.
#pragma omp parallel num_threads(threads_of(A))
  {
    std::vector<float> buf(5 * HC);
    float *v = buf.data(), *xr = v + HC, *gi = xr + HC, *s = gi + HC, *acc = s + HC;
#pragma omp for schedule(dynamic, 64)
    for (int64_t j = 0; j < a.n_src; ++j) {
      for (int64_t x = 0; x < HC; ++x) acc[x] = 0.0f;
      if (colptr[j + 1] > colptr[j]) load_row<DT>((const void*)p.xl, j * HC, HC, v);
      for (int64_t q = colptr[j]; q < colptr[j + 1]; ++q) {
        const int64_t k = csc_edge[q], i = csc_row[q];
        if (q + kAhead < E) {
          prefetch_row<DT>((const void*)p.xr, csc_row[q + kAhead], HC);
          prefetch_row<DT>(g, csc_row[q + kAhead], HC);
        }
        load_row<DT>((const void*)p.xr, i * HC, HC, xr);
        load_row<DT>(g, i * HC, HC, gi);
        pre_activation<DT>(v, xr, ea, k, D, HC, wt, s);
        for (int64_t h = 0; h < H; ++h) {
          const float pk = ws_p[k * H + h], de = ws_de[k * H + h];
          const float *sh = s + h * C, *ah = att + h * C, *gh = gi + h * C;
          float* ac = acc + h * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) ac[c] += pk * gh[c] + de * ah[c] * leaky_grad(sh[c], slope);
        }
      }
      for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.grad_xl, j * HC + x, acc[x]);
    }
  }
}

template <typename I>
void forward_i(const Gatv2Args& a, const Gatv2ForwardPtrs& p) {
  if (a.g.dtype == kF32) forward_t<kF32, I>(a, p);
  else if (a.g.dtype == kBF16) forward_t<kBF16, I>(a, p);
  else forward_t<kF16, I>(a, p);
}

template <typename I>
void backward_i(const Gatv2Args& a, const Gatv2BackwardPtrs& p) {
  if (a.g.dtype == kF32) backward_t<kF32, I>(a, p);
  else if (a.g.dtype == kBF16) backward_t<kBF16, I>(a, p);
  else backward_t<kF16, I>(a, p);
}

}  // namespace

void forward(const Gatv2Args& a, const Gatv2ForwardPtrs& p) {
  if (a.g.index_bits == 32) forward_i<int32_t>(a, p);
  else forward_i<int64_t>(a, p);
}

void backward(const Gatv2Args& a, const Gatv2BackwardPtrs& p) {
  if (a.g.index_bits == 32) backward_i<int32_t>(a, p);
  else backward_i<int64_t>(a, p);
}

}  // namespace SLIMOPS_ISA
}  // namespace gatv2
}  // namespace slimops
