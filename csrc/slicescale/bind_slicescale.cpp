// The Slice-and-Scale family's function in slimops._C (csrc/module_cpu.cpp): mx_convert on
// raw pointers (no torch types); python/slimops/slicescale/cpu.py allocates the outputs and
// wraps it as the op's CPU kernel. Arguments are checked (slicescale_args.h) before any work;
// the instruction set is picked at run time (csrc/common/isa.h).
#include <pybind11/pybind11.h>

#include "csrc/common/isa.h"
#include "csrc/slicescale/slicescale_args.h"
#include "csrc/slicescale/slicescale_cpu.h"

namespace py = pybind11;

namespace slimops {

void bind_slicescale(py::module_& m) {
  m.def("mx_convert",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out_data, uintptr_t out_scales,
           int src, int dst, int block_size, bool truncate, int num_threads) {
          const ConvertArgs a = make_convert_args(data, scales, rows, length, out_data, out_scales, src, dst,
                                                  block_size, truncate, num_threads);
          py::gil_scoped_release release;
          SLIMOPS_ISA_DISPATCH(slicescale_cpu, convert, a)
        },
        "Slice-and-Scale conversion of packed MX data (canonical layout, raw pointers)", py::arg("data"),
        py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out_data"), py::arg("out_scales"),
        py::arg("src"), py::arg("dst"), py::arg("block_size"), py::arg("truncate"), py::arg("num_threads") = 1);
}

}  // namespace slimops
