// slimops._C entry of the Slice-and-Scale family: mx_convert on raw pointers (no
// torch types). The Python side (python/slimops/slicescale/cpu.py) allocates the
// outputs and wraps it as the op's CPU kernel.
#include <pybind11/pybind11.h>

#include <stdlib.h>

#include <string>

#include "slicescale_cpu.h"

namespace py = pybind11;

namespace {

// The instruction set of the MX kernels' choice (SLIMOPS_CPU_ISA can force a lower one).
int slicescale_isa() {
  static const int isa = [] {
    int best = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) best = 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      best = 2;
#endif
    const char* env = getenv("SLIMOPS_CPU_ISA");
    if (env && std::string(env) == "baseline") return 0;
    if (env && std::string(env) == "avx2" && best > 0) return 1;
    return best;
  }();
  return isa;
}

}  // namespace

void bind_slicescale(py::module_& m) {
  m.def("mx_convert",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out_data, uintptr_t out_scales,
           int src, int dst, int block_size, bool truncate, int num_threads) {
          const slimops::ConvertArgs a = slimops::make_convert_args(data, scales, rows, length, out_data, out_scales,
                                                                    src, dst, block_size, truncate, num_threads);
          py::gil_scoped_release release;
          switch (slicescale_isa()) {
#if defined(__x86_64__)
            case 2: slimops::cpu::avx512::convert(a); break;
            case 1: slimops::cpu::avx2::convert(a); break;
#endif
            default: slimops::cpu::baseline::convert(a); break;
          }
        },
        "Slice-and-Scale conversion of packed MX data (canonical layout, raw pointers)", py::arg("data"),
        py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out_data"), py::arg("out_scales"),
        py::arg("src"), py::arg("dst"), py::arg("block_size"), py::arg("truncate"), py::arg("num_threads") = 1);
}
