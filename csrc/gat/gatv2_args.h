// Argument checks of the GATv2 entry points (CPU and CUDA), before any kernel runs
// (std::invalid_argument -> ValueError): the GAT op's checks plus the edge dimension and chunk.
#pragma once

#include <stdexcept>

#include "csrc/gat/gat_args.h"
#include "kernels/gat/gatv2_types.h"

namespace slimops {
namespace gat {

inline Gatv2Args make_gatv2_args(int64_t n_src, int64_t n_dst, int64_t heads, int64_t channels, int64_t n_edges,
                                 int64_t edge_dim, int64_t chunk, int dtype, int index_bits, double negative_slope,
                                 double dropout, int64_t seed, int64_t offset, int num_threads) {
  Gatv2Args a;
  a.g = make_gat_args(n_src, n_dst, heads, channels, n_edges, dtype, index_bits, negative_slope, dropout, seed, offset,
                      num_threads);
  if (edge_dim < 0) throw std::invalid_argument("gatv2: edge_dim must be >= 0");
  if (chunk < 1) throw std::invalid_argument("gatv2: chunk must be >= 1");
  a.edge_dim = edge_dim, a.chunk = chunk;
  return a;
}

}  // namespace gat
}  // namespace slimops
