// Argument checks of the GAT CPU entry points, before any kernel runs (std::invalid_argument -> ValueError).
#pragma once

#include <math.h>
#include <stdexcept>
#include <string>

#include "gat_cpu.h"

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
  need(dtype == 0 || dtype == 1 || dtype == 2, "gat: dtype code must be 0 (f32), 1 (bf16) or 2 (f16)");
  need(index_bits == 32 || index_bits == 64, "gat: index_bits must be 32 or 64");
  need(dropout >= 0.0 && dropout < 1.0, "gat: dropout must be in [0, 1)");
  need(index_bits == 64 || (n_edges < 2147483647LL && n_src < 2147483647LL), "gat: int32 indices need E, N < 2^31");
  GatArgs a;
  a.n_src = n_src, a.n_dst = n_dst, a.heads = heads, a.channels = channels, a.n_edges = n_edges;
  a.dtype = dtype, a.index_bits = index_bits;
  a.negative_slope = (float)negative_slope, a.dropout = (float)dropout;
  a.inv_keep = (float)(1.0 / (1.0 - dropout));
  a.seed = seed, a.offset = offset, a.num_threads = num_threads;
  return a;
}

}  // namespace gat
}  // namespace slimops
