// The MX family's functions in slimops._C (csrc/module_cpu.cpp): quantize,
// dequantize and fake-quantize on the canonical (rows, L) layout, through raw
// pointers and sizes; python/slimops/mx/cpu.py allocates and wraps them as ops.
// Every argument is checked (csrc/mx/mx_args.h) before any kernel runs; the
// instruction set is picked at run time (csrc/common/isa.h).
#include <pybind11/pybind11.h>

#include "csrc/common/first_touch.h"
#include "csrc/common/isa.h"
#include "csrc/mx/mx_args.h"
#include "csrc/mx/mx_cpu.h"
#include "kernels/mx/mx_element.cuh"

namespace py = pybind11;

namespace slimops {

void bind_mx(py::module_& m) {
  m.def("mx_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t data, uintptr_t scales, int fmt,
           int block_size, int scale_mode, bool stochastic, uint32_t seed, int num_threads) {
          const QuantizeArgs a = make_quantize_args(x, dtype, rows, length, data, scales, fmt, block_size,
                                                    scale_mode, stochastic, seed, num_threads);
          py::gil_scoped_release release;
          prefer_huge_pages(a.data, (size_t)(rows * mx::packed_bytes(mx::format_of(fmt).bits, length)));
          SLIMOPS_ISA_DISPATCH(cpu, quantize, a)
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("scales"),
        py::arg("fmt"), py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("num_threads") = 1);

  m.def("mx_dequantize",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out, int dtype, int fmt,
           int block_size, int num_threads) {
          const DequantizeArgs a =
              make_dequantize_args(data, scales, rows, length, out, dtype, fmt, block_size, num_threads);
          py::gil_scoped_release release;
          prefer_huge_pages(a.out, (size_t)(rows * length) * (dtype == kF32 ? 4 : 2));
          SLIMOPS_ISA_DISPATCH(cpu, dequantize, a)
        },
        py::arg("data"), py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("dtype"),
        py::arg("fmt"), py::arg("block_size"), py::arg("num_threads") = 1);

  m.def("mx_fake_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t out, int fmt, int block_size,
           int scale_mode, bool stochastic, uint32_t seed, int num_threads) {
          const FakeQuantizeArgs a = make_fake_quantize_args(x, dtype, rows, length, out, fmt, block_size,
                                                             scale_mode, stochastic, seed, num_threads);
          py::gil_scoped_release release;
          prefer_huge_pages(a.out, (size_t)(rows * length) * (dtype == kF32 ? 4 : 2));
          SLIMOPS_ISA_DISPATCH(cpu, fake_quantize, a)
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("fmt"),
        py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("num_threads") = 1);
}

}  // namespace slimops
