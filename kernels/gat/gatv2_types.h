// Plain argument structs of the GATv2 kernels, shared by the CPU (csrc/gat/gatv2_cpu.cpp) and CUDA
// (kernels/gat/gatv2_kernels.cu) code. The sizes, dtype, dropout and threads are the GAT op's GatArgs.
#pragma once

#include <stdint.h>

#include "kernels/gat/gat_types.h"

namespace slimops {
namespace gat {

struct Gatv2Args {
  GatArgs g;           // n_src, n_dst, heads, channels, n_edges, dtype, index_bits, slope, dropout, seed, ...
  int64_t edge_dim;    // D: columns of edge_attr and w_edge (0: no edge term)
  int64_t chunk;       // backward: rows (CPU) or CSR positions (CUDA) per partial-sum chunk of grad_att, grad_w_edge
};

struct Gatv2ForwardPtrs {
  uintptr_t xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse;
};

struct Gatv2BackwardPtrs {
  uintptr_t grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse;
  uintptr_t grad_xl, grad_xr, grad_att, grad_edge_attr, grad_w_edge;
  uintptr_t colptr;    // workspace int64 [n_src + 1]: the transposed (CSC) index
  uintptr_t csc_edge;  // workspace, index type [n_edges]: CSR positions grouped by source (stable)
  uintptr_t csc_row;   // workspace, index type [n_edges]: their destination rows
  uintptr_t ws;        // workspace float [2, n_edges, heads]: p = alpha * w, then de (see v2_reference.py)
  uintptr_t partial;   // workspace float [n_chunks, H*C * (1 + D)]: per-chunk sums of grad_att, grad_w_edge^T
};

}  // namespace gat
}  // namespace slimops
