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
};

struct ForwardPtrs {
  uintptr_t h, a_src, a_dst, indptr, indices, out, lse;
};

struct BackwardPtrs {
  uintptr_t grad_out, h, a_src, a_dst, indptr, indices, out, lse;
  uintptr_t grad_h, grad_a_src, grad_a_dst;
  uintptr_t colptr;    // workspace int64 [n_src + 1]
  uintptr_t csc_edge;  // workspace, index type [n_edges]: CSR positions grouped by source
  uintptr_t delta;     // workspace float [n_dst * heads]
};

}  // namespace gat
}  // namespace slimops
