// pybind11 module slimops._C_cuda: the MX CUDA kernels (kernels/mx_kernels.cu).
// Like slimops._C it takes raw pointers and sizes, no torch types (no dependency on
// one torch version's C++ ABI); the Python side (python/slimops/backends/cuda/mx.py)
// allocates the tensors and passes their data_ptr() and the current stream's handle.
// Every argument is checked here, before any CUDA call; a CUDA error becomes a
// RuntimeError carrying cudaGetErrorString's text. The GIL is released while the
// kernel is enqueued.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <limits>
#include <stdexcept>
#include <string>

#include "mx_cuda.h"

namespace py = pybind11;
using namespace slimops::cuda;

namespace {

void check(bool cond, const std::string& msg) {
  if (!cond) throw py::value_error(msg);
}

void check_common(int64_t rows, int64_t length, int fmt, int block_size, int dtype) {
  check(rows >= 0, "rows must be >= 0, got " + std::to_string(rows));
  check(length >= 0, "length must be >= 0, got " + std::to_string(length));
  // Element offsets (and byte offsets of fp32 data) must fit in int64.
  check(length == 0 || rows <= std::numeric_limits<int64_t>::max() / 4 / length,
        "rows * length is too large: " + std::to_string(rows) + " * " + std::to_string(length));
  check(fmt >= 0 && fmt <= 8, "fmt must be a format id in [0, 8], got " + std::to_string(fmt));
  check(block_size == 16 || block_size == 32 || block_size == 64,
        "block_size must be 16, 32 or 64, got " + std::to_string(block_size));
  check(dtype >= 0 && dtype <= 2, "dtype must be 0 (float32), 1 (bfloat16) or 2 (float16), got " +
                                      std::to_string(dtype));
}

void check_scale_mode(int scale_mode) {
  check(scale_mode == 0 || scale_mode == 1,
        "scale_mode must be 0 (floor) or 1 (rceil), got " + std::to_string(scale_mode));
}

void check_ptr(uintptr_t p, const char* name, int64_t count) {
  check(count == 0 || p != 0, std::string(name) + " must not be a null pointer");
}

// The float array of `dtype` must be aligned to its element size.
void check_float_ptr(uintptr_t p, const char* name, int dtype) {
  const uintptr_t size = dtype == kF32 ? 4 : 2;
  check(p % size == 0, std::string(name) + " must be aligned to its element size (" + std::to_string(size) +
                           " bytes), got address " + std::to_string(p));
}

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
          check_common(rows, length, fmt, block_size, dtype);
          check_scale_mode(scale_mode);
          check_ptr(x, "x", rows * length);
          check_ptr(data, "data", rows * length);
          check_ptr(scales, "scales", rows * length);
          check_float_ptr(x, "x", dtype);
          QuantizeArgs a{(const void*)x, dtype, rows, length, (uint8_t*)data, (uint8_t*)scales, fmt,
                         block_size, scale_mode, stochastic, seed};
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
          check_common(rows, length, fmt, block_size, dtype);
          check_ptr(data, "data", rows * length);
          check_ptr(scales, "scales", rows * length);
          check_ptr(out, "out", rows * length);
          check_float_ptr(out, "out", dtype);
          DequantizeArgs a{(const uint8_t*)data, (const uint8_t*)scales, rows, length, (void*)out, dtype, fmt,
                           block_size};
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
          check_common(rows, length, fmt, block_size, dtype);
          check_scale_mode(scale_mode);
          check_ptr(x, "x", rows * length);
          check_ptr(out, "out", rows * length);
          check_float_ptr(x, "x", dtype);
          check_float_ptr(out, "out", dtype);
          FakeQuantizeArgs a{(const void*)x, dtype, rows, length, (void*)out, fmt, block_size, scale_mode,
                             stochastic, seed};
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
