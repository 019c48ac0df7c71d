// Fused GAT attention on the CPU (OpenMP). Notation: python/slimops/gat/reference.py.
//
// Forward, one pass per destination row (rows spread over threads): the row's scores
// in a per-thread buffer, max, exp and sum per head (a vectorised exp), then out = sum
// alpha * w * h accumulated in fp32. Saves only lse = max + log(sum). The buffer is
// edge-major when the head count is a multiple of 8 (each step one 8-lane vector of heads:
// a row of a few edges then runs no loops over a handful of elements), head-major otherwise.
// Backward, deterministic for any thread count, no atomics:
//   pass 1, per destination row i: alpha of each in-edge recomputed from lse, its
//   score gradient ds (with D = g[i] . out[i]), grad_a_dst[i] and grad_a_edge (edge-major
//   on vectors of 8 heads as the forward, with 8 heads' dot products at once); alpha * w
//   and ds of every edge go to a workspace [E, 2H] (fp32, the call's only E-sized buffer);
//   pass 2, per source node j over a transposed index (CSR positions grouped by source,
//   with their rows, a stable counting sort): grad_h[j] = sum alpha * w * g[i] and
//   grad_a_src[j] = sum ds, reading the workspace (no exp, no dot product).
// Also the node scores of FusedGATConv (gat_scores: h . att per node and head, in one pass over h) and their
// backward (the score gradients folded into grad_h, and grad_att, in one pass).
// A dropped edge (dropout) is skipped wherever its feature row would be read. Gathered
// rows are prefetched a few edges ahead. The dropout hash, leaky ReLU and the dtype
// loads are kernels/gat/gat_math.cuh, shared with the CUDA kernels. Compiled once per
// instruction set (CMakeLists.txt, GAT_CPU_KERNELS); csrc/gat/bind_gat.cpp picks one at run time.
#include "csrc/gat/gat_cpu.h"

#include <math.h>
#include <string.h>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gat/gat_math.cuh"
#include "csrc/gat/gat_vec.h"

namespace slimops {
namespace gat {
namespace SLIMOPS_ISA {
namespace {

int threads_of(const GatArgs& a) { return a.num_threads > 0 ? a.num_threads : 1; }

// Software prefetch of a gathered row (its 64-byte lines) a few edges ahead: the rows of h (forward,
// backward pass 1) and of grad_out (pass 2) are random reads, latency-bound without it.
constexpr int64_t kAhead = 4;
inline void prefetch_row(const void* p, int64_t bytes) {
  const char* c = (const char*)p;
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 3);
}

// score z of edge (j -> i, CSR position k) and head h: a_src[j] + a_dst[i] (+ a_edge[k]).
template <int DT>
inline float score(const void* as, const float* adst, const void* ae, int64_t j, int64_t k, int64_t h, int64_t H) {
  float z = load<DT>(as, j * H + h) + adst[h];
  if (ae) z += load<DT>(ae, k * H + h);
  return z;
}

// The scores of row i's edges [start, start + deg) into zbuf, head-major (zbuf[h * deg + k]) or, with
// edge_major (H a multiple of 8), edge-major (zbuf[k * H + h]) on 8-lane vectors of heads; prefetching the
// first feature rows (of ``rows``) the caller is about to read.
template <int DT, typename I>
inline void row_scores(const GatArgs& a, const I* indices, const void* as, const void* ae, const float* adst,
                       int64_t start, int64_t deg, float* zbuf, const void* rows, int64_t row_bytes,
                       bool edge_major = false) {
  const int64_t H = a.heads, esz = DT == kF32 ? 4 : 2;
  for (int64_t k = 0; k < deg; ++k) {
    const int64_t j = indices[start + k];
    if (k < kAhead) prefetch_row((const char*)rows + j * row_bytes, row_bytes);
    if (start + k + 16 < a.n_edges) __builtin_prefetch((const char*)as + (int64_t)indices[start + k + 16] * H * esz);
    if (!edge_major) {
      for (int64_t h = 0; h < H; ++h) zbuf[h * deg + k] = score<DT>(as, adst, ae, j, start + k, h, H);
      continue;
    }
    for (int64_t hb = 0; hb < H; hb += 8) {  // score() on 8 heads
      f32x8 z = load8<DT>(as, j * H + hb) + load8<kF32>(adst, hb);
      if (ae) z += load8<DT>(ae, (start + k) * H + hb);
      store8<kF32>(zbuf, k * H + hb, z);
    }
  }
}

// The softmax of row i's edges, head-major (eb[h * deg + k], any H): the scores, their leaky ReLU, max and
// exp; lse[h] = max + log(sum), inv_s[h] = 1 / sum.
template <int DT, typename I>
inline void head_major_softmax(const GatArgs& a, const I* indices, const void* as, const void* ae, const float* adst,
                               int64_t start, int64_t deg, float* eb, const void* hf, int64_t row_bytes, float* lse,
                               float* inv_s) {
  const int64_t H = a.heads;
  row_scores<DT, I>(a, indices, as, ae, adst, start, deg, eb, hf, row_bytes);
  for (int64_t h = 0; h < H; ++h) {  // the max of head h; then e - max
    float* e = eb + h * deg;
    float m = -INFINITY;
    for (int64_t k = 0; k < deg; ++k) {
      e[k] = leaky(e[k], a.negative_slope);
      m = e[k] > m ? e[k] : m;  // a NaN score is skipped here and poisons the sum below
    }
    for (int64_t k = 0; k < deg; ++k) e[k] -= m;  // NaN when every score is -inf, as softmax
    lse[h] = m;
  }
  exp_block(eb, deg * H);
  for (int64_t h = 0; h < H; ++h) {
    const float s = sum_lanes(eb + h * deg, deg);
    lse[h] += logf(s);
    inv_s[h] = 1.0f / s;
  }
}

// The same, edge-major (eb[k * H + h]) for H a multiple of 8: each step is one 8-lane vector of heads (a
// row of a few edges runs no per-head loop over a handful of edges). The sums run over k in order.
template <int DT, typename I>
inline void edge_major_softmax(const GatArgs& a, const I* indices, const void* as, const void* ae, const float* adst,
                               int64_t start, int64_t deg, float* eb, const void* hf, int64_t row_bytes, float* lse,
                               float* inv_s) {
  const int64_t H = a.heads;
  row_scores<DT, I>(a, indices, as, ae, adst, start, deg, eb, hf, row_bytes, true);
  for (int64_t hb = 0; hb < H; hb += 8) {
    f32x8 m = f32x8{} - INFINITY;
    for (int64_t k = 0; k < deg; ++k) {
      const f32x8 z = leaky8(load8<kF32>(eb, k * H + hb), a.negative_slope);
      store8<kF32>(eb, k * H + hb, z);
      m = z > m ? z : m;  // a NaN score is skipped here and poisons the sum below
    }
    store8<kF32>(lse, hb, m);
  }
  for (int64_t k = 0; k < deg; ++k)
    for (int64_t hb = 0; hb < H; hb += 8) store8<kF32>(eb, k * H + hb, load8<kF32>(eb, k * H + hb) - load8<kF32>(lse, hb));
  exp_block(eb, deg * H);
  for (int64_t hb = 0; hb < H; hb += 8) {
    f32x8 s = load8<kF32>(eb, hb);
    for (int64_t k = 1; k < deg; ++k) s += load8<kF32>(eb, k * H + hb);
    store8<kF32>(inv_s, hb, 1.0f / s);
    store8<kF32>(lse, hb, load8<kF32>(lse, hb) + log8(s));
  }
}

// CT > 0: the channel count, known at compile time (the common 8, 16, 32, 64: the per-head loops then
// compile to whole vectors); CT = 0: a.channels.
template <int DT, typename I, int CT>
void forward_t(const GatArgs& a, const ForwardPtrs& p) {
  const int64_t H = a.heads, C = CT > 0 ? CT : a.channels, HC = H * C;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  const void *as = (const void*)p.a_src, *ad = (const void*)p.a_dst, *ae = (const void*)p.a_edge;
  const void* hf = (const void*)p.h;
  float* lse = (float*)p.lse;
  const uint32_t key = seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
  const int64_t row_bytes = HC * (DT == kF32 ? 4 : 2);
  const float* bias = (const float*)p.bias;
#pragma omp parallel num_threads(threads_of(a))
  {
    std::vector<float> ebuf, acc(HC), inv_s(H), adst(H);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < a.n_dst; ++i) {
      const int64_t start = indptr[i], deg = (int64_t)indptr[i + 1] - start;
      if (deg <= 0) {
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, bias ? bias[x] : 0.0f);
        for (int64_t h = 0; h < H; ++h) lse[i * H + h] = -INFINITY;
        continue;
      }
      if ((int64_t)ebuf.size() < padded(deg * H)) ebuf.resize(padded(deg * H));
      float* eb = ebuf.data();
      for (int64_t h = 0; h < H; ++h) adst[h] = load<DT>(ad, i * H + h);
      if (H % 8 == 0) {
        edge_major_softmax<DT, I>(a, indices, as, ae, adst.data(), start, deg, eb, hf, row_bytes, lse + i * H,
                                  inv_s.data());
      } else {
        head_major_softmax<DT, I>(a, indices, as, ae, adst.data(), start, deg, eb, hf, row_bytes, lse + i * H,
                                  inv_s.data());
      }
      const int64_t es = H % 8 == 0 ? H : 1, hs = H % 8 == 0 ? 1 : deg;  // eb[k * es + h * hs]
      for (int64_t x = 0; x < HC; ++x) acc[x] = 0.0f;
      for (int64_t k = 0; k < deg; ++k) {
        const int64_t j = indices[start + k];
        if (k + kAhead < deg) prefetch_row((const char*)hf + (int64_t)indices[start + k + kAhead] * row_bytes, row_bytes);
        const uint32_t ekey = drop ? edge_key(key, (uint64_t)(a.offset + start + k)) : 0u;
        for (int64_t h = 0; h < H; ++h) {
          float coef = eb[k * es + h * hs] * inv_s[h];
          if (drop) {
            const float w = dropout_weight(ekey, (int)h, a.dropout, a.inv_keep);
            if (w == 0.0f) continue;  // a dropped edge's row is not read
            coef *= w;
          }
          float* ac = acc.data() + h * C;
          const int64_t base = (j * H + h) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) ac[c] += coef * load<DT>(hf, base + c);
        }
      }
      if (bias) {
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, acc[x] + bias[x]);
      } else {
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.out, i * HC + x, acc[x]);
      }
    }
  }
}

// The transposed index: a stable counting sort of the CSR positions by source, with their rows.
template <typename I>
void transpose(const GatArgs& a, const I* indptr, const I* indices, int64_t* colptr, I* csc_edge, int64_t* csc_row) {
  for (int64_t j = 0; j <= a.n_src; ++j) colptr[j] = 0;
  for (int64_t k = 0; k < a.n_edges; ++k) colptr[(int64_t)indices[k] + 1]++;
  for (int64_t j = 0; j < a.n_src; ++j) colptr[j + 1] += colptr[j];
  std::vector<int64_t> fill(colptr, colptr + a.n_src);
  for (int64_t i = 0; i < a.n_dst; ++i)
    for (int64_t k = indptr[i]; k < (int64_t)indptr[i + 1]; ++k) {
      const int64_t q = fill[(int64_t)indices[k]]++;
      csc_edge[q] = (I)k;
      csc_row[q] = i;
    }
}

template <int DT, typename I, int CT>
void backward_t(const GatArgs& a, const BackwardPtrs& p) {
  const int64_t H = a.heads, C = CT > 0 ? CT : a.channels, HC = H * C;
  const I* indptr = (const I*)p.indptr;
  const I* indices = (const I*)p.indices;
  const float* lse = (const float*)p.lse;
  float* work = (float*)p.work;  // [E, 2H]: alpha * w, then ds
  int64_t* colptr = (int64_t*)p.colptr;
  I* csc_edge = (I*)p.csc_edge;
  int64_t* csc_row = (int64_t*)p.csc_row;
  const uint32_t key = seed_key(a.seed);
  const bool drop = a.dropout > 0.0f;
  const float slope = a.negative_slope;
  const void *g = (const void*)p.grad_out, *hf = (const void*)p.h, *o = (const void*)p.out;
  const void *as = (const void*)p.a_src, *ad = (const void*)p.a_dst, *ae = (const void*)p.a_edge;
  void* gae = (void*)p.grad_a_edge;
  const float* bias = (const float*)p.bias;
  const int64_t row_bytes = HC * (DT == kF32 ? 4 : 2);

  if (!a.csc_ready) transpose(a, indptr, indices, colptr, csc_edge, csc_row);

  // Pass 1, per destination row i, in blocks of kBiasBlock rows (with grad_bias, each block's sum of grad_out
  // into the workspace after the edges' part).
  float* gbias = (float*)p.grad_bias;
  const int64_t blocks = (a.n_dst + kBiasBlock - 1) / kBiasBlock;
  float* bias_part = work + a.n_edges * 2 * H;  // [blocks, HC], used with grad_bias
#pragma omp parallel num_threads(threads_of(a))
  {
    std::vector<float> zbuf, abuf, gi(HC), adst(H), d(H), acc(H), wv(H), ghv(H);
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < blocks; ++b) {
      float* bpart = bias_part + b * HC;
      if (gbias)
        for (int64_t x = 0; x < HC; ++x) bpart[x] = 0.0f;
      const int64_t end = (b + 1) * kBiasBlock < a.n_dst ? (b + 1) * kBiasBlock : a.n_dst;
      for (int64_t i = b * kBiasBlock; i < end; ++i) {
        const int64_t start = indptr[i], deg = (int64_t)indptr[i + 1] - start;
        for (int64_t h = 0; h < H; ++h) adst[h] = load<DT>(ad, i * H + h), acc[h] = 0.0f;
        if (deg > 0) {
          if ((int64_t)zbuf.size() < padded(deg * H)) zbuf.resize(padded(deg * H)), abuf.resize(padded(deg * H));
          float *zb = zbuf.data(), *ab = abuf.data();
          const bool em = H % 8 == 0;  // edge-major (zb[k * H + h]) on 8-lane vectors of heads, else head-major
          row_scores<DT, I>(a, indices, as, ae, adst.data(), start, deg, zb, hf, row_bytes, em);
          for (int64_t x = 0; x < HC; ++x) gi[x] = load<DT>(g, i * HC + x);
          if (em && CT > 0 && CT % 8 == 0) {  // 8 heads' dot products at once, as the edges' below
            for (int64_t hb = 0; hb < H; hb += 8) {
              f32x8 dv = dots8<DT, (CT > 0 ? CT : 8)>(gi.data() + hb * C, o, i * HC + hb * C);
              if (bias)  // out holds out + bias: D = g . out - g . bias
                dv -= dots8<kF32, (CT > 0 ? CT : 8)>(gi.data() + hb * C, bias, hb * C);
              store8<kF32>(d.data(), hb, dv);
            }
          } else {
            for (int64_t h = 0; h < H; ++h) d[h] = head_dot<DT, CT>(gi.data() + h * C, o, i * HC + h * C, C);
            if (bias)  // out holds out + bias: D = g . out - g . bias
              for (int64_t h = 0; h < H; ++h) d[h] -= head_dot<kF32, CT>(gi.data() + h * C, bias, h * C, C);
          }
          // leaky(z), rounded, then minus lse in a second step, as the forward computed lse: fused into one FMA
          // (z * slope - lse) it differs from the forward's by up to half an ulp of z * slope, which exp turns
          // into 0 or Inf for scores near the float maximum
          if (em) {
            for (int64_t k = 0; k < deg; ++k)
              for (int64_t hb = 0; hb < H; hb += 8)
                store8<kF32>(ab, k * H + hb, leaky8(load8<kF32>(zb, k * H + hb), slope) - load8<kF32>(lse, i * H + hb));
          } else {
            for (int64_t h = 0; h < H; ++h) {
              const float l = lse[i * H + h];
              const float* z = zb + h * deg;
              float* al = ab + h * deg;
              for (int64_t k = 0; k < deg; ++k) al[k] = leaky(z[k], slope);
              for (int64_t k = 0; k < deg; ++k) al[k] -= l;
            }
          }
          exp_block(ab, deg * H);  // alpha
          const int64_t es = em ? H : 1, hs = em ? 1 : deg;  // zb[k * es + h * hs]
          for (int64_t k = 0; k < deg; ++k) {
            const int64_t j = indices[start + k];
            if (k + kAhead < deg) prefetch_row((const char*)hf + (int64_t)indices[start + k + kAhead] * row_bytes, row_bytes);
            const uint32_t ekey = drop ? edge_key(key, (uint64_t)(a.offset + start + k)) : 0u;
            float* wk = work + (start + k) * 2 * H;
            const bool em_dots = em && CT > 0 && CT % 8 == 0;  // the dot products 8 heads at a time (below)
            for (int64_t h = 0; h < H; ++h) {
              const float w = drop ? dropout_weight(ekey, (int)h, a.dropout, a.inv_keep) : 1.0f;
              if (em_dots) {
                wv[h] = w;
                continue;
              }
              // a dropped edge's row is not read
              const float gh = w != 0.0f ? head_dot<DT, CT>(gi.data() + h * C, hf, (j * H + h) * C, C) : 0.0f;
              if (em) {  // the rest below on vectors of heads
                wv[h] = w;
                ghv[h] = gh;
                continue;
              }
              const float z = zb[h * hs + k * es], alpha = ab[h * hs + k * es];
              const float ds = alpha * (w * gh - d[h]) * leaky_grad(z, slope);
              acc[h] += ds;
              wk[h] = alpha * w;
              wk[H + h] = ds;
              if (gae) store<DT>(gae, (start + k) * H + h, ds);
            }
            if (em)
              for (int64_t hb = 0; hb < H; hb += 8) {
                const f32x8 alpha = load8<kF32>(ab, k * H + hb), w = load8<kF32>(wv.data(), hb);
                f32x8 gh = load8<kF32>(ghv.data(), hb);
                if (em_dots) {  // a dropped (edge, head)'s products are read but never used: selected out
                  const f32x8 all = dots8<DT, (CT > 0 ? CT : 8)>(gi.data() + hb * C, hf, (j * H + hb) * C);
                  gh = w != 0.0f ? all : f32x8{};
                }
                const f32x8 ds = alpha * (w * gh - load8<kF32>(d.data(), hb)) *
                                 leaky_grad8(load8<kF32>(zb, k * H + hb), slope);
                store8<kF32>(acc.data(), hb, load8<kF32>(acc.data(), hb) + ds);
                store8<kF32>(wk, hb, alpha * w);
                store8<kF32>(wk, H + hb, ds);
                if (gae) store8<DT>(gae, (start + k) * H + hb, ds);
              }
          }
        }
        for (int64_t h = 0; h < H; ++h) store<DT>((void*)p.grad_a_dst, i * H + h, acc[h]);
        if (gbias)
          for (int64_t x = 0; x < HC; ++x) bpart[x] += load<DT>(g, i * HC + x);
      }
    }
  }
  if (gbias) {
    for (int64_t x = 0; x < HC; ++x) gbias[x] = 0.0f;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t x = 0; x < HC; ++x) gbias[x] += bias_part[b * HC + x];
  }

  // Pass 2, per source node j over its out-edges (CSR order): grad_h[j], grad_a_src[j].
#pragma omp parallel num_threads(threads_of(a))
  {
    std::vector<float> acc(HC), gs(H);
    std::vector<char> kept(H, 1);
#pragma omp for schedule(dynamic, 64)
    for (int64_t j = 0; j < a.n_src; ++j) {
      float *ac = acc.data(), *gsum = gs.data();
      for (int64_t x = 0; x < HC; ++x) ac[x] = 0.0f;
      for (int64_t h = 0; h < H; ++h) gsum[h] = 0.0f;
      for (int64_t q = colptr[j]; q < colptr[j + 1]; ++q) {
        const int64_t k = csc_edge[q], i = csc_row[q];
        if (q + kAhead < a.n_edges) {
          prefetch_row((const char*)g + csc_row[q + kAhead] * row_bytes, row_bytes);
          __builtin_prefetch(work + (int64_t)csc_edge[q + kAhead] * 2 * H);
        }
        const float* wk = work + k * 2 * H;
        for (int64_t h = 0; h < H; ++h) gsum[h] += wk[H + h];
        if (drop) {  // a dropped edge's row is not read
          const uint32_t ekey = edge_key(key, (uint64_t)(a.offset + k));
          for (int64_t h = 0; h < H; ++h) kept[h] = dropout_weight(ekey, (int)h, a.dropout, a.inv_keep) != 0.0f;
        }
        for (int64_t h = 0; h < H; ++h) {
          if (!kept[h]) continue;
          const float w = wk[h];
          float* ach = ac + h * C;
          const int64_t base = i * HC + h * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) ach[c] += w * load<DT>(g, base + c);
        }
      }
      for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.grad_h, j * HC + x, ac[x]);
      for (int64_t h = 0; h < H; ++h) store<DT>((void*)p.grad_a_src, j * H + h, gsum[h]);
    }
  }
}

// s[k, n, h] = h[n, h, :] . att[k, h, :], one node per iteration (any channel count: scalar loops).
template <int DT, int CT>
void scores_generic(const ScoresArgs& a, const ScoresPtrs& p) {
  const int64_t H = a.heads, C = CT > 0 ? CT : a.channels, K = a.k, HC = H * C;
  const float* att = (const float*)p.att;
#pragma omp parallel num_threads(a.num_threads > 0 ? a.num_threads : 1)
  {
    std::vector<float> row(HC);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < a.nodes; ++n) {
      for (int64_t x = 0; x < HC; ++x) row[x] = load<DT>((const void*)p.h, n * HC + x);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t h = 0; h < H; ++h) {
          float part[16] = {0.0f};  // as dot(): lane-wise partials, then a tree
          const float *x = row.data() + h * C, *w = att + (k * H + h) * C;
          int64_t c = 0;
          for (; c + 16 <= C; c += 16)
            for (int l = 0; l < 16; ++l) part[l] += x[c + l] * w[c + l];
          if (c + 8 <= C) {
            for (int l = 0; l < 8; ++l) part[l] += x[c + l] * w[c + l];
            c += 8;
          }
          float tail = 0.0f;
          for (; c < C; ++c) tail += x[c] * w[c];
          store<DT>((void*)p.s, (k * a.nodes + n) * H + h, sum_lanes(part, 16) + tail);
        }
    }
  }
}

// grad_h_out = grad_h_in + sum_k grad[k, n, h] att[k, h, :]; grad_att = sum_n grad[k, n, h] h[n, h, :], summed per
// fixed block of kScoresBlock nodes into the workspace, then the blocks in order.
template <int DT, int CT>
void scores_backward_generic(const ScoresArgs& a, const ScoresBackwardPtrs& p) {
  const int64_t H = a.heads, C = CT > 0 ? CT : a.channels, K = a.k, HC = H * C, KHC = K * HC;
  const int64_t blocks = (a.nodes + kScoresBlock - 1) / kScoresBlock;
  const float* att = (const float*)p.att;
  float* work = (float*)p.work;
  const void *g = (const void*)p.grad, *hf = (const void*)p.h, *gin = (const void*)p.grad_h_in;
#pragma omp parallel num_threads(a.num_threads > 0 ? a.num_threads : 1)
  {
    std::vector<float> row(HC), gk(K * H);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      float* part = work + b * KHC;
      for (int64_t x = 0; x < KHC; ++x) part[x] = 0.0f;
      const int64_t end = (b + 1) * kScoresBlock < a.nodes ? (b + 1) * kScoresBlock : a.nodes;
      for (int64_t n = b * kScoresBlock; n < end; ++n) {
        for (int64_t k = 0; k < K; ++k)
          for (int64_t h = 0; h < H; ++h) gk[k * H + h] = load<DT>(g, (k * a.nodes + n) * H + h);
        for (int64_t x = 0; x < HC; ++x) row[x] = gin ? load<DT>(gin, n * HC + x) : 0.0f;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t h = 0; h < H; ++h) {
            const float gv = gk[k * H + h];
            const float* w = att + (k * H + h) * C;
            float* pa = part + (k * H + h) * C;
            float* r = row.data() + h * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              r[c] += gv * w[c];
              pa[c] += gv * load<DT>(hf, n * HC + h * C + c);
            }
          }
        for (int64_t x = 0; x < HC; ++x) store<DT>((void*)p.grad_h_out, n * HC + x, row[x]);
      }
    }
  }
  float* gatt = (float*)p.grad_att;
  for (int64_t x = 0; x < KHC; ++x) gatt[x] = 0.0f;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t x = 0; x < KHC; ++x) gatt[x] += work[b * KHC + x];
}

// ---------------------------------------------------------------------------- scores, C a multiple of 8
// The same sums on 8-lane vectors (GCC vector extensions: one AVX2 register, two SSE ones), written out because
// GCC's own vectorisation of the loops above at C = 8 transposes the node's heads through dozens of vpermd and
// blends per node on AVX2 (about 300 ns a node, ten times the AVX-512 build's). A head's dot product is one
// product per 8 channels summed lane-wise, then the tree (l, l + 4), (l, l + 2), (0, 1): at C = 8 the order of
// the scalar kernel's.
template <int DT, int CT>
void scores_t(const ScoresArgs& a, const ScoresPtrs& p) {
  if (CT == 0 || CT % 8) return scores_generic<DT, CT>(a, p);
  constexpr int64_t C = CT;
  const int64_t H = a.heads, K = a.k, HC = H * C;
  const float* att = (const float*)p.att;
#pragma omp parallel for schedule(static) num_threads(a.num_threads > 0 ? a.num_threads : 1)
  for (int64_t n = 0; n < a.nodes; ++n)
    for (int64_t h = 0; h < H; ++h) {
      f32x8 x[C / 8];
      for (int64_t c = 0; c < C; c += 8) x[c / 8] = load8<DT>((const void*)p.h, n * HC + h * C + c);
      for (int64_t k = 0; k < K; ++k) {
        const float* w = att + (k * H + h) * C;
        f32x8 acc = x[0] * load8<kF32>(w, 0);
        for (int64_t c = 8; c < C; c += 8) acc += x[c / 8] * load8<kF32>(w, c);
        store<DT>((void*)p.s, (k * a.nodes + n) * H + h, hsum8(acc));
      }
    }
}

template <int DT, int CT>
void scores_backward_t(const ScoresArgs& a, const ScoresBackwardPtrs& p) {
  if (CT == 0 || CT % 8) return scores_backward_generic<DT, CT>(a, p);
  constexpr int64_t C = CT;
  const int64_t H = a.heads, K = a.k, HC = H * C, KHC = K * HC;
  const int64_t blocks = (a.nodes + kScoresBlock - 1) / kScoresBlock;
  const float* att = (const float*)p.att;
  float* work = (float*)p.work;
  const void *g = (const void*)p.grad, *hf = (const void*)p.h, *gin = (const void*)p.grad_h_in;
#pragma omp parallel for schedule(static) num_threads(a.num_threads > 0 ? a.num_threads : 1)
  for (int64_t b = 0; b < blocks; ++b) {
    float* part = work + b * KHC;
    for (int64_t x = 0; x < KHC; ++x) part[x] = 0.0f;
    const int64_t end = (b + 1) * kScoresBlock < a.nodes ? (b + 1) * kScoresBlock : a.nodes;
    for (int64_t n = b * kScoresBlock; n < end; ++n)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t c = 0; c < C; c += 8) {
          const int64_t at = n * HC + h * C + c;
          f32x8 r = gin ? load8<DT>(gin, at) : f32x8{};
          const f32x8 hv = load8<DT>(hf, at);
          for (int64_t k = 0; k < K; ++k) {
            const float gv = load<DT>(g, (k * a.nodes + n) * H + h);
            float* pa = part + (k * H + h) * C + c;
            r += gv * load8<kF32>(att, (k * H + h) * C + c);
            store8<kF32>(pa, 0, load8<kF32>(pa, 0) + gv * hv);
          }
          store8<DT>((void*)p.grad_h_out, at, r);
        }
  }
  float* gatt = (float*)p.grad_att;
  for (int64_t x = 0; x < KHC; ++x) gatt[x] = 0.0f;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t x = 0; x < KHC; ++x) gatt[x] += work[b * KHC + x];
}

// Calls K<CT>::run(args...) with CT the channel count when it is one of the compiled ones, else 0. Only fp32
// gets the compile-time channel counts: each one is a whole set of kernels to compile (per index type and
// instruction set), and bf16 / fp16 inputs run the general loops (the build took twice as long with them).
template <int DT, template <int> class K, typename... Args>
void by_channels(int64_t channels, Args&&... args) {
  if constexpr (DT != kF32) {
    K<0>::run(args...);
  } else {
    switch (channels) {
      case 8: K<8>::run(args...); break;
      case 16: K<16>::run(args...); break;
      case 32: K<32>::run(args...); break;
      case 64: K<64>::run(args...); break;
      default: K<0>::run(args...);
    }
  }
}

template <int DT, typename I> struct Forward { template <int CT> struct K {
  static void run(const GatArgs& a, const ForwardPtrs& p) { forward_t<DT, I, CT>(a, p); } }; };
template <int DT, typename I> struct Backward { template <int CT> struct K {
  static void run(const GatArgs& a, const BackwardPtrs& p) { backward_t<DT, I, CT>(a, p); } }; };
template <int DT> struct Scores { template <int CT> struct K {
  static void run(const ScoresArgs& a, const ScoresPtrs& p) { scores_t<DT, CT>(a, p); } }; };
template <int DT> struct ScoresBackward { template <int CT> struct K {
  static void run(const ScoresArgs& a, const ScoresBackwardPtrs& p) { scores_backward_t<DT, CT>(a, p); } }; };

template <typename I>
void dispatch_forward(const GatArgs& a, const ForwardPtrs& p) {
  if (a.dtype == kF32) by_channels<kF32, Forward<kF32, I>::template K>(a.channels, a, p);
  else if (a.dtype == kBF16) by_channels<kBF16, Forward<kBF16, I>::template K>(a.channels, a, p);
  else by_channels<kF16, Forward<kF16, I>::template K>(a.channels, a, p);
}

template <typename I>
void dispatch_backward(const GatArgs& a, const BackwardPtrs& p) {
  if (a.dtype == kF32) by_channels<kF32, Backward<kF32, I>::template K>(a.channels, a, p);
  else if (a.dtype == kBF16) by_channels<kBF16, Backward<kBF16, I>::template K>(a.channels, a, p);
  else by_channels<kF16, Backward<kF16, I>::template K>(a.channels, a, p);
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

void transpose_csc(const GatArgs& a, const BackwardPtrs& p) {
  if (a.index_bits == 32)
    transpose(a, (const int32_t*)p.indptr, (const int32_t*)p.indices, (int64_t*)p.colptr, (int32_t*)p.csc_edge,
              (int64_t*)p.csc_row);
  else
    transpose(a, (const int64_t*)p.indptr, (const int64_t*)p.indices, (int64_t*)p.colptr, (int64_t*)p.csc_edge,
              (int64_t*)p.csc_row);
}

void scores(const ScoresArgs& a, const ScoresPtrs& p) {
  if (a.dtype == kF32) by_channels<kF32, Scores<kF32>::K>(a.channels, a, p);
  else if (a.dtype == kBF16) by_channels<kBF16, Scores<kBF16>::K>(a.channels, a, p);
  else by_channels<kF16, Scores<kF16>::K>(a.channels, a, p);
}

void scores_backward(const ScoresArgs& a, const ScoresBackwardPtrs& p) {
  if (a.dtype == kF32) by_channels<kF32, ScoresBackward<kF32>::K>(a.channels, a, p);
  else if (a.dtype == kBF16) by_channels<kBF16, ScoresBackward<kBF16>::K>(a.channels, a, p);
  else by_channels<kF16, ScoresBackward<kF16>::K>(a.channels, a, p);
}

}  // namespace SLIMOPS_ISA
}  // namespace gat
}  // namespace slimops
