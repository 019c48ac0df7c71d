// C++ CPU kernels of the per-row integer codec: one row per iteration, OpenMP over rows.
// The element math is kernels/rowq/rowq_element.cuh (also compiled into the CUDA kernels).
#include <math.h>
#include <string.h>

#include "csrc/rowq/rowq_args.h"
#include "kernels/rowq/rowq_element.cuh"

namespace slimops {
namespace rowq {

void rowq_quantize_cpu(const RowqArgs& a) {
  const uint32_t key = slimops::mix32(a.seed);
  const int per = 8 / a.bits;
#pragma omp parallel for num_threads(a.num_threads) schedule(static)
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* x = a.x + r * a.length;
    float mn = 0.0f, mx = 0.0f;
    if (a.length > 0) {
      mn = mx = x[0];
      for (int64_t j = 1; j < a.length; ++j) {
        mn = rowq::nan_min(mn, x[j]);
        mx = rowq::nan_max(mx, x[j]);
      }
    }
    const rowq::RowParams p = rowq::row_params(mn, mx, a.bits);
    a.params[2 * r] = p.mn;
    a.params[2 * r + 1] = p.scale;
    uint8_t* d = a.data + r * a.packed;
    memset(d, 0, (size_t)a.packed);
    const uint32_t base = (uint32_t)((uint64_t)r * (uint64_t)a.length);
    for (int64_t j = 0; j < a.length; ++j) {
      const uint32_t q = rowq::encode(x[j], p, a.bits, a.stochastic, key, base + (uint32_t)j);
      d[j / per] |= (uint8_t)(q << ((j % per) * a.bits));
    }
  }
}

void rowq_dequantize_cpu(const RowqArgs& a) {
  const int per = 8 / a.bits;
  const uint32_t mask = (1u << a.bits) - 1;
#pragma omp parallel for num_threads(a.num_threads) schedule(static)
  for (int64_t r = 0; r < a.rows; ++r) {
    const uint8_t* d = a.data + r * a.packed;
    const float mn = a.params[2 * r], scale = a.params[2 * r + 1];
    float* o = a.out + r * a.length;
    for (int64_t j = 0; j < a.length; ++j) {
      const uint32_t q = (d[j / per] >> ((j % per) * a.bits)) & mask;
      o[j] = rowq::decode(q, mn, scale);
    }
  }
}

}  // namespace rowq
}  // namespace slimops
