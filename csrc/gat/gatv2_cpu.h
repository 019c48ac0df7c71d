// The GATv2 CPU kernels, declared for each instruction-set build of csrc/gat/gatv2_cpu.cpp;
// their arguments are kernels/gat/gatv2_types.h (raw pointers and sizes).
#pragma once
#include <stdint.h>

#include "kernels/gat/gatv2_types.h"

namespace slimops {
namespace gatv2 {

#define SLIMOPS_GATV2_DECLARE_ISA(ISA)                                      \
  namespace ISA {                                                           \
  void forward(const gat::Gatv2Args& a, const gat::Gatv2ForwardPtrs& p);    \
  void backward(const gat::Gatv2Args& a, const gat::Gatv2BackwardPtrs& p);  \
  }

SLIMOPS_GATV2_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_GATV2_DECLARE_ISA(avx2)
SLIMOPS_GATV2_DECLARE_ISA(avx512)
#endif

}  // namespace gatv2
}  // namespace slimops
