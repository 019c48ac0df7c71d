// Plain argument structs of the GAT kernels, shared by the CPU (csrc/gat/) and CUDA (kernels/gat/) code.
#pragma once

#include <stdint.h>

namespace slimops {
namespace gat {

struct GatArgs {
  int64_t n_src, n_dst, heads, channels, n_edges;
  int dtype;        // DType of h, a_src, a_dst, out, grad_out, grads
  int index_bits;   // 32 or 64: indptr and indices
  float negative_slope, dropout, inv_keep;
  int64_t seed, offset;
  int num_threads;
  bool csc_ready = false;  // CPU backward: colptr / csc_edge / csc_row already hold the transposed index
};

// a_edge (optional, 0 when absent): a per-edge, per-head score [n_edges, heads] in CSR order, h's dtype.
// bias (CPU only, optional, 0 when absent): an fp32 [heads * channels] vector that the forward adds to each
// row of out (FusedGATConv's bias, fused: no second N x H x C tensor); the backward is then given the same
// bias and out + bias as ``out``.
struct ForwardPtrs {
  uintptr_t h, a_src, a_dst, indptr, indices, out, lse;
  uintptr_t a_edge;
  uintptr_t bias = 0;
};

// colptr / csc_edge / csc_row: the transposed index (CSR positions grouped by source, stable, and their
// destination rows). The CPU kernel builds it in these workspaces; on CUDA the caller builds it.
struct BackwardPtrs {
  uintptr_t grad_out, h, a_src, a_dst, indptr, indices, out, lse;
  uintptr_t grad_h, grad_a_src, grad_a_dst;
  uintptr_t colptr;       // int64 [n_src + 1]
  uintptr_t csc_edge;     // index type [n_edges]
  uintptr_t csc_row;      // int64 [n_edges]
  uintptr_t work;         // float workspace: CPU [n_edges * 2 * heads] (alpha * w and ds of each edge), then,
                          // with grad_bias, [ceil(n_dst / kBiasBlock), heads * channels] (per-block sums);
                          // CUDA [n_dst * heads] (delta = g . out of each row)
  uintptr_t a_edge;       // optional, as in ForwardPtrs
  uintptr_t grad_a_edge;  // [n_edges, heads], a_edge's dtype; written when a_edge is given
  uintptr_t bias = 0;     // CPU only, optional: the forward's bias (out then holds out + bias)
  uintptr_t grad_bias = 0;  // CPU only, optional: fp32 [heads * channels], grad_out summed over the rows
};

// The CPU backward's rows go to threads in blocks of kBiasBlock; grad_bias is summed per block in row order,
// then over the blocks in order (deterministic for any thread count).
constexpr int64_t kBiasBlock = 64;

// gat_scores: s[k, n, h] = sum_c h[n, h, c] * att[k, h, c] (the node scores of K attention vectors), and its
// backward: grad_h_out = grad_h_in (optional) + sum_k grad[k, n, h] * att[k, h, :], grad_att = sum_n grad * h.
// att, grad_att and the workspace are fp32; h, s, grad, grad_h_* in ``dtype``.
struct ScoresArgs {
  int64_t nodes, heads, channels, k;
  int dtype;
  int num_threads;
};

struct ScoresPtrs {
  uintptr_t h, att, s;
};

constexpr int64_t kScoresBlock = 512;  // nodes per partial sum of grad_att (fixed: deterministic for any threads)

struct ScoresBackwardPtrs {
  uintptr_t grad, h, att, grad_h_in, grad_h_out, grad_att;
  uintptr_t work;  // fp32 [ceil(nodes / kScoresBlock), k * heads * channels]
};

}  // namespace gat
}  // namespace slimops
