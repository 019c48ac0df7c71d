// slimops._C_cuda entries of the rowq family (device pointers and a stream; python/slimops/rowq/
// cuda.py wraps them). Sizes and bits are checked (rowq_args.h) before any launch; a CUDA launch error
// becomes a RuntimeError.
#include <pybind11/pybind11.h>

#include "csrc/common/cuda_errors.h"
#include "csrc/rowq/rowq_args.h"
#include "kernels/rowq/rowq_cuda.h"

namespace py = pybind11;

namespace slimops {
void bind_rowq_cuda(py::module_& m) {
  using namespace slimops::rowq;
  m.def("rowq_quantize",
        [](uintptr_t x, int64_t rows, int64_t length, uintptr_t data, uintptr_t params, int bits, bool stochastic,
           uint32_t seed, uintptr_t stream) {
          check_rowq(rows, length, bits, x && data && params);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = rowq_quantize_cuda(reinterpret_cast<const float*>(x), reinterpret_cast<uint8_t*>(data),
                                     reinterpret_cast<float*>(params), rows, length, bits, stochastic, seed,
                                     (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "rowq_quantize");
        },
        py::arg("x"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("params"), py::arg("bits"),
        py::arg("stochastic"), py::arg("seed"), py::arg("stream") = 0);
  m.def("rowq_dequantize",
        [](uintptr_t data, uintptr_t params, int64_t rows, int64_t length, uintptr_t out, int bits, uintptr_t stream) {
          check_rowq(rows, length, bits, out && data && params);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = rowq_dequantize_cuda(reinterpret_cast<const uint8_t*>(data), reinterpret_cast<const float*>(params),
                                       reinterpret_cast<float*>(out), rows, length, bits, (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "rowq_dequantize");
        },
        py::arg("data"), py::arg("params"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("bits"),
        py::arg("stream") = 0);
}
}  // namespace slimops
