// pybind11 module slimops._C: the C++ CPU kernels. Takes raw pointers and sizes
// (no torch types, so it does not depend on one torch version's C++ ABI); the
// Python side (python/slimops/backends/cpu/mx.py) allocates and wraps them as ops.
// Every argument is checked (csrc/mx_args.h) before any kernel runs.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "mx_cpu.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using namespace slimops::cpu;

namespace {

enum class Isa { kBaseline, kAvx2, kAvx512 };

Isa detect_isa() {
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

Isa active_isa() {
  static const Isa isa = [] {
    const char* env = getenv("SLIMOPS_CPU_ISA");  // force a lower path: baseline, avx2
    Isa best = detect_isa();
    if (env && std::string(env) == "baseline") return Isa::kBaseline;
    if (env && std::string(env) == "avx2" && best != Isa::kBaseline) return Isa::kAvx2;
    return best;
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "baseline";
}

#define SLIMOPS_DISPATCH(FN, ARGS)                         \
  switch (active_isa()) {                                  \
    SLIMOPS_X86_CASES(FN, ARGS)                            \
    default: baseline::FN(ARGS); break;                    \
  }
#if defined(__x86_64__)
#define SLIMOPS_X86_CASES(FN, ARGS)                \
  case Isa::kAvx512: avx512::FN(ARGS); break;      \
  case Isa::kAvx2: avx2::FN(ARGS); break;
#else
#define SLIMOPS_X86_CASES(FN, ARGS)
#endif

}  // namespace

void bind_gat(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "slimops C++ CPU kernels (raw pointers; use the torch.ops.slimops ops instead)";

  m.def("mx_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t data, uintptr_t scales, int fmt,
           int block_size, int scale_mode, bool stochastic, uint32_t seed, int num_threads) {
          const QuantizeArgs a = slimops::make_quantize_args(x, dtype, rows, length, data, scales, fmt, block_size,
                                                             scale_mode, stochastic, seed, num_threads);
          py::gil_scoped_release release;
          SLIMOPS_DISPATCH(quantize, a)
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("scales"),
        py::arg("fmt"), py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("num_threads") = 1);

  m.def("mx_dequantize",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out, int dtype, int fmt,
           int block_size, int num_threads) {
          const DequantizeArgs a =
              slimops::make_dequantize_args(data, scales, rows, length, out, dtype, fmt, block_size, num_threads);
          py::gil_scoped_release release;
          SLIMOPS_DISPATCH(dequantize, a)
        },
        py::arg("data"), py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("dtype"),
        py::arg("fmt"), py::arg("block_size"), py::arg("num_threads") = 1);

  m.def("mx_fake_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t out, int fmt, int block_size,
           int scale_mode, bool stochastic, uint32_t seed, int num_threads) {
          const FakeQuantizeArgs a = slimops::make_fake_quantize_args(x, dtype, rows, length, out, fmt, block_size,
                                                                      scale_mode, stochastic, seed, num_threads);
          py::gil_scoped_release release;
          SLIMOPS_DISPATCH(fake_quantize, a)
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("fmt"),
        py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("num_threads") = 1);

  bind_gat(m);

  m.def("cpu_features", [] {
    py::dict d;
    d["isa"] = isa_name(active_isa());
    d["isa_detected"] = isa_name(detect_isa());
#ifdef _OPENMP
    d["openmp"] = true;
    d["openmp_max_threads"] = omp_get_max_threads();
#else
    d["openmp"] = false;
#endif
    return d;
  });
}
