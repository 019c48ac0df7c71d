// pybind11 module slimops._C_cuda: the MX CUDA kernels (kernels/mx_kernels.cu).
// Like slimops._C it takes raw pointers and sizes, no torch types (no dependency on
// one torch version's C++ ABI); the Python side (python/slimops/backends/cuda/mx.py)
// allocates the tensors and passes their data_ptr() and the current stream's handle.
// Every argument is checked (csrc/mx_args.h) before any CUDA call; a CUDA error becomes a
// RuntimeError carrying cudaGetErrorString's text. The GIL is released while the
// kernel is enqueued.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "mx_cuda.h"

namespace py = pybind11;
using namespace slimops::cuda;

namespace {

void raise_if_error(cudaError_t err, const char* op) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("slimops._C_cuda.") + op + ": CUDA error " + std::to_string((int)err) +
                             " (" + cudaGetErrorName(err) + "): " + cudaGetErrorString(err));
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "slimops CUDA kernels (raw device pointers; use the torch.ops.slimops ops instead)";

  m.def("mx_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t data, uintptr_t scales, int fmt,
           int block_size, int scale_mode, bool stochastic, uint32_t seed, uintptr_t stream) {
          const QuantizeArgs a = slimops::make_quantize_args(x, dtype, rows, length, data, scales, fmt, block_size,
                                                             scale_mode, stochastic, seed, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = quantize(a, (cudaStream_t)stream);
          }
          raise_if_error(err, "mx_quantize");
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("data"), py::arg("scales"),
        py::arg("fmt"), py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("stream") = 0);

  m.def("mx_dequantize",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out, int dtype, int fmt,
           int block_size, uintptr_t stream) {
          const DequantizeArgs a =
              slimops::make_dequantize_args(data, scales, rows, length, out, dtype, fmt, block_size, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = dequantize(a, (cudaStream_t)stream);
          }
          raise_if_error(err, "mx_dequantize");
        },
        py::arg("data"), py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("dtype"),
        py::arg("fmt"), py::arg("block_size"), py::arg("stream") = 0);

  m.def("mx_fake_quantize",
        [](uintptr_t x, int dtype, int64_t rows, int64_t length, uintptr_t out, int fmt, int block_size,
           int scale_mode, bool stochastic, uint32_t seed, uintptr_t stream) {
          const FakeQuantizeArgs a = slimops::make_fake_quantize_args(x, dtype, rows, length, out, fmt, block_size,
                                                                      scale_mode, stochastic, seed, 1);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = fake_quantize(a, (cudaStream_t)stream);
          }
          raise_if_error(err, "mx_fake_quantize");
        },
        py::arg("x"), py::arg("dtype"), py::arg("rows"), py::arg("length"), py::arg("out"), py::arg("fmt"),
        py::arg("block_size"), py::arg("scale_mode"), py::arg("stochastic"), py::arg("seed"),
        py::arg("stream") = 0);

  // What the module was built with and what it finds; never raises (no GPU, no driver:
  // device_count 0 and the error's text).
  m.def("device_info", [] {
    py::dict d;
    d["cudart_version_built"] = CUDART_VERSION;
    int v = 0;
    d["cudart_version"] = cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
    v = 0;
    d["driver_version"] = cudaDriverGetVersion(&v) == cudaSuccess ? v : 0;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    d["device_count"] = err == cudaSuccess ? count : 0;
    d["error"] = err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
    if (err == cudaSuccess && count > 0) {
      int dev = 0, major = 0, minor = 0;
      if (cudaGetDevice(&dev) == cudaSuccess &&
          cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
          cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess) {
        d["device"] = dev;
        d["compute_capability"] = py::make_tuple(major, minor);
      }
    }
    cudaGetLastError();  // leave no error behind for the next launch check
    return d;
  });
}
