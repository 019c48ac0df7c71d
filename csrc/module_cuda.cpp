// pybind11 module slimops._C_cuda: the CUDA kernels of every family. Each family
// adds its functions in its own bind_<family>_cuda(m)
// (csrc/<family>/bind_<family>_cuda.cpp); a new family is one declaration and one
// call here. Raw device pointers, sizes and a stream handle; no torch types.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <string>

namespace py = pybind11;

namespace slimops {
void bind_mx_cuda(py::module_& m);
void bind_slicescale_cuda(py::module_& m);
void bind_gat_cuda(py::module_& m);
void bind_rowq_cuda(py::module_& m);
void bind_gatv2_cuda(py::module_& m);
}  // namespace slimops

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "slimops CUDA kernels (raw device pointers; use the torch.ops.slimops ops instead)";
  slimops::bind_mx_cuda(m);
  slimops::bind_slicescale_cuda(m);
  slimops::bind_gat_cuda(m);
  slimops::bind_rowq_cuda(m);
  slimops::bind_gatv2_cuda(m);

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
