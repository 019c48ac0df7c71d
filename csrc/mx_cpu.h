// Arguments of the MX CPU kernels (canonical layout: contiguous (rows, L)), and
// their declarations for each instruction-set build of csrc/mx_cpu.cpp.
#pragma once
#include <stdint.h>

namespace slimops {
namespace cpu {

enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

struct QuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  uint8_t* data; uint8_t* scales;
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed; int num_threads;
};

struct DequantizeArgs {
  const uint8_t* data; const uint8_t* scales; int64_t rows, length;
  void* out; int dtype; int fmt, block_size; int num_threads;
};

struct FakeQuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  void* out;  // same dtype as x
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed; int num_threads;
};

#define SLIMOPS_DECLARE_ISA(ISA)                 \
  namespace ISA {                                \
  void quantize(const QuantizeArgs& a);          \
  void dequantize(const DequantizeArgs& a);      \
  void fake_quantize(const FakeQuantizeArgs& a); \
  }

SLIMOPS_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_DECLARE_ISA(avx2)
SLIMOPS_DECLARE_ISA(avx512)
#endif

}  // namespace cpu
}  // namespace slimops
