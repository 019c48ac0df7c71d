// The MX CPU kernels (canonical layout: contiguous (rows, L)), declared for each
// instruction-set build of csrc/mx/mx_cpu.cpp; their arguments are kernels/mx/mx_params.h.
#pragma once
#include <stdint.h>

#include "kernels/mx/mx_params.h"

namespace slimops {
namespace cpu {

using slimops::DequantizeArgs;
using slimops::FakeQuantizeArgs;
using slimops::QuantizeArgs;
using slimops::kBF16;
using slimops::kF16;
using slimops::kF32;

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
