// Checks of the Slice-and-Scale kernels' arguments (kernels/slicescale/slicescale_params.h).
// The bindings build the struct through make_convert_args, which validates everything before
// any kernel runs and throws std::invalid_argument (a Python ValueError) naming the argument.
#pragma once
#include <stdint.h>

#include <limits>
#include <string>

#include "csrc/common/checks.h"
#include "kernels/slicescale/slicescale_element.cuh"
#include "kernels/slicescale/slicescale_params.h"

namespace slimops {

inline ConvertArgs make_convert_args(uintptr_t data, uintptr_t scales, int64_t rows, int64_t length,
                                     uintptr_t out_data, uintptr_t out_scales, int src, int dst, int block_size,
                                     bool truncate, int num_threads, uintptr_t counts = 0) {
  check(rows >= 0, "rows must be >= 0, got " + std::to_string(rows));
  check(length >= 0, "length must be >= 0, got " + std::to_string(length));
  check(length == 0 || rows <= std::numeric_limits<int64_t>::max() / 8 / length,
        "rows * length is too large: " + std::to_string(rows) + " * " + std::to_string(length));
  check(src >= 0 && src <= 8, "src must be a format id in [0, 8], got " + std::to_string(src));
  check(dst >= 0 && dst <= 8, "dst must be a format id in [0, 8], got " + std::to_string(dst));
  check(src != dst && slicescale::pair_supported(src, dst),
        "unsupported conversion " + std::to_string(src) + " -> " + std::to_string(dst) +
            " (same family, fewer bits; the identity is done by the caller)");
  check(block_size == 16 || block_size == 32 || block_size == 64,
        "block_size must be 16, 32 or 64, got " + std::to_string(block_size));
  check(num_threads >= 1, "num_threads must be >= 1, got " + std::to_string(num_threads));
  const bool empty = rows == 0 || length == 0;
  check(empty || (data && scales && out_data && out_scales), "data, scales, out_data and out_scales must be non-null");
  return {(const uint8_t*)data, (const uint8_t*)scales, rows, length, (uint8_t*)out_data, (uint8_t*)out_scales,
          src, dst, block_size, truncate, num_threads, (int64_t*)counts};
}

}  // namespace slimops
