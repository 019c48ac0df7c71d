// The mxgemm CPU kernel, declared for each instruction-set build of csrc/mxgemm/mxgemm_cpu.cpp
// (namespace slimops::mxgemm_cpu::<isa>); its arguments are kernels/mxgemm/mxgemm_params.h.
#pragma once
#include "kernels/mxgemm/mxgemm_params.h"

namespace slimops {
namespace mxgemm_cpu {
#define SLIMOPS_MXGEMM_DECLARE_ISA(ISA)   \
  namespace ISA {                         \
  void linear(const LinearArgs& a);       \
  const char* linear_path(const LinearArgs& a); \
  }
SLIMOPS_MXGEMM_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_MXGEMM_DECLARE_ISA(avx2)
SLIMOPS_MXGEMM_DECLARE_ISA(avx512)
#endif
#undef SLIMOPS_MXGEMM_DECLARE_ISA
}  // namespace mxgemm_cpu
}  // namespace slimops
