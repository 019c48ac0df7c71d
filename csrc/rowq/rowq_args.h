// Argument structs and checks of the rowq family's CPU and CUDA kernels (throw std::invalid_argument,
// which pybind11 turns into ValueError, before any kernel runs).
#pragma once
#include <stdint.h>

#include <stdexcept>
#include <string>

namespace slimops {
namespace rowq {

struct RowqArgs {
  const float* x;      // (rows, length) fp32, quantize input / dequantize output
  float* out;          // dequantize output
  uint8_t* data;       // (rows, packed) codes
  float* params;       // (rows, 2): min, scale
  int64_t rows, length, packed;
  int bits;
  bool stochastic;
  uint32_t seed;
  int num_threads;
};

inline int64_t rowq_packed_bytes(int64_t length, int bits) { return (length * bits + 7) / 8; }

inline void check_rowq(int64_t rows, int64_t length, int bits, bool has_pointers) {
  if (bits != 2 && bits != 4 && bits != 8)
    throw std::invalid_argument("rowq: bits must be 2, 4 or 8, got " + std::to_string(bits));
  if (rows < 0 || length < 0)
    throw std::invalid_argument("rowq: rows and length must be >= 0, got " + std::to_string(rows) + ", " +
                                std::to_string(length));
  if (!has_pointers && rows * length > 0) throw std::invalid_argument("rowq: null pointer for a non-empty tensor");
}

}  // namespace rowq
}  // namespace slimops
