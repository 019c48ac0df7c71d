// The Slice-and-Scale CPU kernel, declared for each instruction-set build of
// csrc/slicescale/slicescale_cpu.cpp (namespace slimops::slicescale_cpu::<isa>): convert, and
// path(), the fast path that build runs here ("avx512-vbmi", "avx512", "avx2", "baseline").
#pragma once
#include "kernels/slicescale/slicescale_params.h"

namespace slimops {
namespace slicescale_cpu {
#define SLIMOPS_SS_DECLARE_ISA(ISA) \
  namespace ISA {                   \
  void convert(const ConvertArgs& a); \
  const char* path();                 \
  }
SLIMOPS_SS_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_SS_DECLARE_ISA(avx2)
SLIMOPS_SS_DECLARE_ISA(avx512)
#endif
#undef SLIMOPS_SS_DECLARE_ISA
}  // namespace slicescale_cpu
}  // namespace slimops
