// slimops._C entries of the rowq family (raw pointers and sizes; see python/slimops/rowq/cpu.py).
#include <pybind11/pybind11.h>

#include "csrc/rowq/rowq_args.h"

namespace py = pybind11;

namespace slimops {
namespace rowq {
void rowq_quantize_cpu(const RowqArgs& a);
void rowq_dequantize_cpu(const RowqArgs& a);
}  // namespace rowq
}  // namespace slimops

namespace slimops {
void bind_rowq(py::module_& m) {
  using slimops::rowq::RowqArgs;
  m.def("rowq_quantize",
        [](uintptr_t x, int64_t rows, int64_t length, uintptr_t data, uintptr_t params, int bits, bool stochastic,
           uint32_t seed, int num_threads) {
          slimops::rowq::check_rowq(rows, length, bits, x && data && params);
          RowqArgs a{reinterpret_cast<const float*>(x), nullptr, reinterpret_cast<uint8_t*>(data),
                     reinterpret_cast<float*>(params), rows, length,
                     slimops::rowq::rowq_packed_bytes(length, bits), bits, stochastic, seed,
                     num_threads < 1 ? 1 : num_threads};
          py::gil_scoped_release release;
          slimops::rowq::rowq_quantize_cpu(a);
        },
        py::arg("x"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("params"), py::arg("bits"),
        py::arg("stochastic"), py::arg("seed"), py::arg("num_threads") = 1);
  m.def("rowq_dequantize",
        [](uintptr_t data, uintptr_t params, int64_t rows, int64_t length, uintptr_t out, int bits, int num_threads) {
          slimops::rowq::check_rowq(rows, length, bits, out && data && params);
          RowqArgs a{nullptr, reinterpret_cast<float*>(out), reinterpret_cast<uint8_t*>(data),
                     reinterpret_cast<float*>(params), rows, length,
                     slimops::rowq::rowq_packed_bytes(length, bits), bits, false, 0,
                     num_threads < 1 ? 1 : num_threads};
          py::gil_scoped_release release;
          slimops::rowq::rowq_dequantize_cpu(a);
        },
        py::arg("data"), py::arg("params"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("bits"),
        py::arg("num_threads") = 1);
}
}  // namespace slimops
