// Argument checks of the GAT CPU entry points, before any kernel runs (std::invalid_argument -> ValueError).
#pragma once

#include <math.h>
#include <stdexcept>
#include <string>

#include "kernels/gat/gat_math.cuh"
#include "kernels/gat/gat_types.h"

namespace slimops {
namespace gat {

inline GatArgs make_gat_args(int64_t n_src, int64_t n_dst, int64_t heads, int64_t channels, int64_t n_edges,
                             int dtype, int index_bits, double negative_slope, double dropout, int64_t seed,
                             int64_t offset, int num_threads) {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
  };
  need(n_src >= 0 && n_dst >= 0 && n_edges >= 0, "gat: sizes must be non-negative");
  need(heads >= 1 && channels >= 1, "gat: heads and channels must be >= 1");
  need(dtype == kF32 || dtype == kBF16 || dtype == kF16, "gat: dtype code must be 0 (f32), 1 (bf16) or 2 (f16)");
  need(index_bits == 32 || index_bits == 64, "gat: index_bits must be 32 or 64");
  need(dropout >= 0.0 && dropout < 1.0, "gat: dropout must be in [0, 1)");
  // int32 indices hold CSR positions (< E) and source ids (< N_src); destination rows are int64 everywhere.
  need(index_bits == 64 || (n_edges < 2147483647LL && n_src < 2147483647LL),
       "gat: int32 indices need E and N_src below 2^31 - 1");
  GatArgs a;
  a.n_src = n_src, a.n_dst = n_dst, a.heads = heads, a.channels = channels, a.n_edges = n_edges;
  a.dtype = dtype, a.index_bits = index_bits;
  a.negative_slope = (float)negative_slope, a.dropout = (float)dropout;
  a.inv_keep = (float)(1.0 / (1.0 - dropout));
  a.seed = seed, a.offset = offset, a.num_threads = num_threads;
  return a;
}

template <typename I>
inline void check_csr_t(const GatArgs& a, const I* indptr, const I* indices) {
  if (indptr[0] != 0)
    throw std::invalid_argument("malformed CSR: indptr[0] must be 0, got " + std::to_string((int64_t)indptr[0]));
  for (int64_t i = 0; i < a.n_dst; ++i)
    if (indptr[i + 1] < indptr[i])
      throw std::invalid_argument("malformed CSR: indptr must be non-decreasing, but indptr[" + std::to_string(i + 1) +
                                  "] < indptr[" + std::to_string(i) + "]");
  if ((int64_t)indptr[a.n_dst] != a.n_edges)
    throw std::invalid_argument("malformed CSR: indptr[-1] must equal len(indices) = " + std::to_string(a.n_edges) +
                                ", got " + std::to_string((int64_t)indptr[a.n_dst]));
  for (int64_t k = 0; k < a.n_edges; ++k)
    if (indices[k] < 0 || (int64_t)indices[k] >= a.n_src)
      throw std::invalid_argument("malformed CSR: indices must lie in [0, " + std::to_string(a.n_src) +
                                  ") (the number of source nodes), got " + std::to_string((int64_t)indices[k]) +
                                  " at position " + std::to_string(k));
}

// Data-dependent CSR checks of CPU tensors (O(N + E), before the kernel runs).
inline void check_csr(const GatArgs& a, uintptr_t indptr, uintptr_t indices) {
  if (a.index_bits == 32) check_csr_t(a, (const int32_t*)indptr, (const int32_t*)indices);
  else check_csr_t(a, (const int64_t*)indptr, (const int64_t*)indices);
}

}  // namespace gat
}  // namespace slimops
