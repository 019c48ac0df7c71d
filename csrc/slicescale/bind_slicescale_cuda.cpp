// slimops._C_cuda entry of the Slice-and-Scale family: mx_convert on raw device pointers
// and a stream handle (counts: the device address of the report's kNumCounts int64, zeroed by the
// caller, or 0). Arguments are checked (slicescale_args.h) before any CUDA call;
// a CUDA error becomes a RuntimeError. The Python side is python/slimops/slicescale/cuda.py.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include "csrc/common/cuda_errors.h"
#include "csrc/slicescale/slicescale_args.h"
#include "kernels/slicescale/slicescale_cuda.h"

namespace py = pybind11;

namespace slimops {

void bind_slicescale_cuda(py::module_& m) {
  m.def("mx_convert",
        [](uintptr_t data, uintptr_t scales, int64_t rows, int64_t length, uintptr_t out_data, uintptr_t out_scales,
           int src, int dst, int block_size, bool truncate, uintptr_t stream, uintptr_t counts) {
          const ConvertArgs a = make_convert_args(data, scales, rows, length, out_data, out_scales, src, dst,
                                                  block_size, truncate, 1, counts);
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = slicescale_cuda::convert(a, (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "mx_convert");
        },
        "Slice-and-Scale conversion of packed MX data on the GPU (raw device pointers)", py::arg("data"),
        py::arg("scales"), py::arg("rows"), py::arg("length"), py::arg("out_data"), py::arg("out_scales"),
        py::arg("src"), py::arg("dst"), py::arg("block_size"), py::arg("truncate"), py::arg("stream"),
        py::arg("counts") = 0);
}

}  // namespace slimops
