// Run-time choice of the instruction set for CPU kernels compiled once per ISA
// (CMakeLists.txt: baseline x86-64, x86-64-v3 = AVX2, x86-64-v4 = AVX-512; each
// build puts its functions in namespace slimops::cpu::<isa>). No -march=native:
// the best path the CPU supports is picked here; SLIMOPS_CPU_ISA=baseline|avx2
// forces a lower one.
#pragma once
#include <stdlib.h>

#include <string>

namespace slimops {
namespace isa {

enum class Isa { kBaseline, kAvx2, kAvx512 };

inline Isa detect() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return Isa::kAvx2;
#endif
  return Isa::kBaseline;
}

inline Isa active() {
  static const Isa chosen = [] {
    const char* env = getenv("SLIMOPS_CPU_ISA");
    const Isa best = detect();
    if (env && std::string(env) == "baseline") return Isa::kBaseline;
    if (env && std::string(env) == "avx2" && best != Isa::kBaseline) return Isa::kAvx2;
    return best;
  }();
  return chosen;
}

inline const char* name(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "baseline";
}

}  // namespace isa
}  // namespace slimops

// SLIMOPS_ISA_DISPATCH(NS, FN, ARGS): call NS::<active isa>::FN(ARGS).
#if defined(__x86_64__)
#define SLIMOPS_ISA_DISPATCH(NS, FN, ARGS)                                  \
  switch (::slimops::isa::active()) {                                       \
    case ::slimops::isa::Isa::kAvx512: NS::avx512::FN(ARGS); break;         \
    case ::slimops::isa::Isa::kAvx2: NS::avx2::FN(ARGS); break;             \
    default: NS::baseline::FN(ARGS); break;                                 \
  }
#else
#define SLIMOPS_ISA_DISPATCH(NS, FN, ARGS) NS::baseline::FN(ARGS);
#endif
