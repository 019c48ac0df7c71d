// The MX family's functions in slimops._C_cuda (csrc/module_cuda.cpp): the CUDA
// kernels of kernels/mx/mx_kernels.cu. Like slimops._C they take raw device
// pointers and sizes, no torch types; python/slimops/mx/cuda.py allocates the
// tensors and passes their data_ptr() and the current stream's handle. Every
// argument is checked (csrc/mx/mx_args.h) before any CUDA call; the GIL is
// released while the kernel is enqueued.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include "csrc/common/cuda_errors.h"
#include "csrc/mx/mx_args.h"
#include "kernels/mx/mx_cuda.h"

namespace py = pybind11;

namespace slimops {

void bind_mx_cuda(py::module_& m) {
  m.def("mx_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t data, uintptr_t scales, int fmt,
           int block_size, int scale_mode, bool stochastic, uint32_t seed, uintptr_t stream) {
          const QuantizeArgs a = make_quantize_args(x, dtype, rows, length, data, scales, fmt, block_size,
                                                    scale_mode, stochastic, seed, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = cuda::quantize(a, (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "mx_quantize");
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("scales"),
        py::arg("fmt"), py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("stream") = 0);

  m.def("mx_dequantize",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out, int dtype, int fmt,
           int block_size, uintptr_t stream) {
          const DequantizeArgs a =
              make_dequantize_args(data, scales, rows, length, out, dtype, fmt, block_size, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = cuda::dequantize(a, (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "mx_dequantize");
        },
        py::arg("data"), py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("dtype"),
        py::arg("fmt"), py::arg("block_size"), py::arg("stream") = 0);

  m.def("mx_fake_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t out, int fmt, int block_size,
           int scale_mode, bool stochastic, uint32_t seed, uintptr_t stream) {
          const FakeQuantizeArgs a = make_fake_quantize_args(x, dtype, rows, length, out, fmt, block_size,
                                                             scale_mode, stochastic, seed, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = cuda::fake_quantize(a, (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "mx_fake_quantize");
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("fmt"),
        py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("stream") = 0);
}

}  // namespace slimops
