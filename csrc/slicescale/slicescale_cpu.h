// The Slice-and-Scale CPU kernel, declared for each instruction-set build of
// csrc/slicescale/slicescale_cpu.cpp; its arguments are slicescale_args.h.
#pragma once
#include "slicescale_args.h"

namespace slimops {
namespace cpu {
#define SLIMOPS_SS_DECLARE_ISA(ISA) \
  namespace ISA {                   \
  void convert(const ConvertArgs& a); \
  }
SLIMOPS_SS_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_SS_DECLARE_ISA(avx2)
SLIMOPS_SS_DECLARE_ISA(avx512)
#endif
#undef SLIMOPS_SS_DECLARE_ISA
}  // namespace cpu
}  // namespace slimops
