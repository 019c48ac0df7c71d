// Checks of the MX kernels' arguments (kernels/mx/mx_params.h). The pybind11
// bindings build every argument struct through make_*_args, which validates it
// before any kernel runs and throws std::invalid_argument (a Python ValueError)
// naming the argument.
#pragma once
#include <stdint.h>

#include <limits>
#include <string>

#include "csrc/common/checks.h"
#include "kernels/mx/mx_params.h"

namespace slimops {

namespace mx_args {

using slimops::check;

inline void check_common(int64_t rows, int64_t length, int fmt, int block_size, int dtype, int num_threads) {
  check(rows >= 0, "rows must be >= 0, got " + std::to_string(rows));
  check(length >= 0, "length must be >= 0, got " + std::to_string(length));
  // Element offsets (and byte offsets of fp32 data) must fit in int64.
  check(length == 0 || rows <= std::numeric_limits<int64_t>::max() / 4 / length,
        "rows * length is too large: " + std::to_string(rows) + " * " + std::to_string(length));
  check(fmt >= 0 && fmt <= 8, "fmt must be a format id in [0, 8], got " + std::to_string(fmt));
  check(block_size == 16 || block_size == 32 || block_size == 64,
        "block_size must be 16, 32 or 64, got " + std::to_string(block_size));
  check(dtype >= 0 && dtype <= 2,
        "dtype must be 0 (float32), 1 (bfloat16) or 2 (float16), got " + std::to_string(dtype));
  check(num_threads >= 1, "num_threads must be >= 1, got " + std::to_string(num_threads));
}

inline void check_scale_mode(int scale_mode) {
  check(scale_mode == 0 || scale_mode == 1,
        "scale_mode must be 0 (floor) or 1 (rceil), got " + std::to_string(scale_mode));
}

inline void check_ptr(uintptr_t p, const char* name, int64_t count) {
  check(count == 0 || p != 0, std::string(name) + " must not be a null pointer");
}

// A float array of `dtype` must be aligned to its element size.
inline void check_float_ptr(uintptr_t p, const char* name, int dtype) {
  const uintptr_t size = dtype == kF32 ? 4 : 2;
  check(p % size == 0, std::string(name) + " must be aligned to its element size (" + std::to_string(size) +
                           " bytes), got address " + std::to_string(p));
}

}  // namespace mx_args

inline QuantizeArgs make_quantize_args(uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t data,
                                       uintptr_t scales, int fmt, int block_size, int scale_mode, bool stochastic,
                                       uint32_t seed, int num_threads) {
  mx_args::check_common(rows, length, fmt, block_size, dtype, num_threads);
  mx_args::check_scale_mode(scale_mode);
  mx_args::check_ptr(x, "x", rows * length);
  mx_args::check_ptr(data, "data", rows * length);
  mx_args::check_ptr(scales, "scales", rows * length);
  mx_args::check_float_ptr(x, "x", dtype);
  return {(const void*)x, dtype, rows, length, (uint8_t*)data, (uint8_t*)scales, fmt, block_size, scale_mode,
          stochastic, seed, num_threads};
}

inline DequantizeArgs make_dequantize_args(uintptr_t data, uintptr_t scales, int64_t rows, int64_t length,
                                           uintptr_t out, int dtype, int fmt, int block_size, int num_threads) {
  mx_args::check_common(rows, length, fmt, block_size, dtype, num_threads);
  mx_args::check_ptr(data, "data", rows * length);
  mx_args::check_ptr(scales, "scales", rows * length);
  mx_args::check_ptr(out, "out", rows * length);
  mx_args::check_float_ptr(out, "out", dtype);
  return {(const uint8_t*)data, (const uint8_t*)scales, rows, length, (void*)out, dtype, fmt, block_size,
          num_threads};
}

inline FakeQuantizeArgs make_fake_quantize_args(uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t out,
                                                int fmt, int block_size, int scale_mode, bool stochastic,
                                                uint32_t seed, int num_threads) {
  mx_args::check_common(rows, length, fmt, block_size, dtype, num_threads);
  mx_args::check_scale_mode(scale_mode);
  mx_args::check_ptr(x, "x", rows * length);
  mx_args::check_ptr(out, "out", rows * length);
  mx_args::check_float_ptr(x, "x", dtype);
  mx_args::check_float_ptr(out, "out", dtype);
  return {(const void*)x, dtype, rows, length, (void*)out, fmt, block_size, scale_mode, stochastic, seed,
          num_threads};
}

}  // namespace slimops
