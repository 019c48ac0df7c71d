// The Slice-and-Scale family's function in slimops._C (csrc/module_cpu.cpp): mx_convert on
// raw pointers (no torch types); python/slimops/slicescale/cpu.py allocates the outputs and
// wraps it as the op's CPU kernel. Arguments are checked (slicescale_args.h) before any work;
// the instruction set is picked at run time (csrc/common/isa.h). counts: the address of kNumCounts
// int64 for the conversion report (0: none).
#include <pybind11/pybind11.h>

#include <string>

#include "csrc/common/isa.h"
#include "csrc/slicescale/slicescale_args.h"
#include "csrc/slicescale/slicescale_cpu.h"

namespace py = pybind11;

namespace slimops {

void bind_slicescale(py::module_& m) {
  m.def("mx_convert",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out_data, uintptr_t out_scales,
           int src, int dst, int block_size, bool truncate, int num_threads, uintptr_t counts) {
          const ConvertArgs a = make_convert_args(data, scales, rows, length, out_data, out_scales, src, dst,
                                                  block_size, truncate, num_threads, counts);
          py::gil_scoped_release release;
          SLIMOPS_ISA_DISPATCH(slicescale_cpu, convert, a)
        },
        "Slice-and-Scale conversion of packed MX data (canonical layout, raw pointers)", py::arg("data"),
        py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out_data"), py::arg("out_scales"),
        py::arg("src"), py::arg("dst"), py::arg("block_size"), py::arg("truncate"), py::arg("num_threads") = 1,
        py::arg("counts") = 0);
  m.def("mx_convert_path", [] {
#if defined(__x86_64__)
    switch (isa::active()) {
      case isa::Isa::kAvx512: return std::string(slicescale_cpu::avx512::path());
      case isa::Isa::kAvx2: return std::string(slicescale_cpu::avx2::path());
      default: break;
    }
#endif
    return std::string(slicescale_cpu::baseline::path());
  }, "The CPU fast path mx_convert runs here: avx512-vbmi, avx512, avx2 or baseline (SLIMOPS_CPU_ISA, "
     "SLIMOPS_CPU_VBMI=0)");
}

}  // namespace slimops
