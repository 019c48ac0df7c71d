// Checks of the mxgemm kernels' arguments (kernels/mxgemm/mxgemm_params.h). The binding builds
// the struct through make_linear_args, which validates everything before any kernel runs and
// throws std::invalid_argument (a Python ValueError) naming the argument.
#pragma once
#include <stdint.h>

#include <limits>
#include <string>

#include "csrc/common/checks.h"
#include "kernels/mx/mx_element.cuh"
#include "kernels/mxgemm/mxgemm_params.h"

namespace slimops {

inline LinearArgs make_linear_args(uintptr_t x, int x_dtype, int64_t M, int64_t K, uintptr_t w_data,
                                   uintptr_t w_scales, int64_t N, int fmt, int block_size, uintptr_t bias,
                                   int bias_dtype, uintptr_t y, int num_threads) {
  check(M >= 0 && K >= 0 && N >= 0, "M, K and N must be >= 0, got " + std::to_string(M) + ", " +
                                        std::to_string(K) + ", " + std::to_string(N));
  const int64_t big = std::numeric_limits<int64_t>::max() / 8;
  check((K == 0 || M <= big / K) && (K == 0 || N <= big / K) && (N == 0 || M <= big / N),
        "M * K, N * K or M * N is too large");
  check(x_dtype >= kF32 && x_dtype <= kF16, "x_dtype must be 0 (fp32), 1 (bf16) or 2 (fp16), got " +
                                                std::to_string(x_dtype));
  check(bias_dtype >= kF32 && bias_dtype <= kF16, "bias_dtype must be 0 (fp32), 1 (bf16) or 2 (fp16), got " +
                                                      std::to_string(bias_dtype));
  check(fmt >= 0 && fmt < mx::kNumFormats, "fmt must be a format id in [0, 8], got " + std::to_string(fmt));
  check(block_size == 16 || block_size == 32 || block_size == 64,
        "block_size must be 16, 32 or 64, got " + std::to_string(block_size));
  check(num_threads >= 1, "num_threads must be >= 1, got " + std::to_string(num_threads));
  const bool empty = M == 0 || N == 0;
  check(empty || (y && (K == 0 || (x && w_data && w_scales))), "x, w_data, w_scales and y must be non-null");
  return {(const void*)x, x_dtype, M, K, (const uint8_t*)w_data, (const uint8_t*)w_scales, N, fmt, block_size,
          (const void*)bias, bias_dtype, (void*)y, num_threads};
}

}  // namespace slimops
