// The GAT CPU kernels, declared for each instruction-set build of csrc/gat/gat_cpu.cpp;
// their arguments are kernels/gat/gat_types.h (raw pointers and sizes).
#pragma once
#include <stdint.h>

#include "kernels/gat/gat_types.h"

namespace slimops {
namespace gat {

#define SLIMOPS_GAT_DECLARE_ISA(ISA)                         \
  namespace ISA {                                            \
  void forward(const GatArgs& a, const ForwardPtrs& p);      \
  void backward(const GatArgs& a, const BackwardPtrs& p);    \
  void transpose_csc(const GatArgs& a, const BackwardPtrs& p); \
  void scores(const ScoresArgs& a, const ScoresPtrs& p);      \
  void scores_backward(const ScoresArgs& a, const ScoresBackwardPtrs& p); \
  }

SLIMOPS_GAT_DECLARE_ISA(baseline)
#if defined(__x86_64__)
SLIMOPS_GAT_DECLARE_ISA(avx2)
SLIMOPS_GAT_DECLARE_ISA(avx512)
#endif

}  // namespace gat
}  // namespace slimops
