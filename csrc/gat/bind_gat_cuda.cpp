// slimops._C_cuda entries of the GAT family (device pointers and a stream; python/slimops/gat/cuda.py wraps them).
// Shapes and dtypes are checked (gat_args.h) before any launch; the CSR's values are not (a host sync), the
// kernels guard their reads instead. A CUDA launch error becomes a RuntimeError.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "csrc/common/cuda_errors.h"
#include "csrc/gat/gat_args.h"
#include "kernels/gat/gat_cuda.h"

namespace py = pybind11;

namespace slimops {

void bind_gat_cuda(py::module_& m) {
  using namespace slimops::gat;
  m.def("gat_forward",
        [](uintptr_t h, uintptr_t a_src, uintptr_t a_dst, uintptr_t indptr, uintptr_t indices, uintptr_t out,
           uintptr_t lse, int64_t n_src, int64_t n_dst, int64_t heads, int64_t channels, int64_t n_edges, int dtype,
           int index_bits, double negative_slope, double dropout, int64_t seed, int64_t offset, uintptr_t stream,
           uintptr_t a_edge, int64_t max_blocks) {
          const GatArgs a = make_gat_args(n_src, n_dst, heads, channels, n_edges, dtype, index_bits, negative_slope,
                                          dropout, seed, offset, 1);
          if (channels > 256) throw std::invalid_argument("gat (CUDA C++): channels per head must be <= 256");
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = forward_cuda(a, ForwardPtrs{h, a_src, a_dst, indptr, indices, out, lse, a_edge},
                               (cudaStream_t)stream, max_blocks);
          }
          raise_if_cuda_error(err, "gat_forward");
        },
        py::arg("h"), py::arg("a_src"), py::arg("a_dst"), py::arg("indptr"), py::arg("indices"), py::arg("out"),
        py::arg("lse"), py::arg("n_src"), py::arg("n_dst"), py::arg("heads"), py::arg("channels"),
        py::arg("n_edges"), py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"), py::arg("dropout"),
        py::arg("seed"), py::arg("offset"), py::arg("stream") = 0, py::arg("a_edge") = 0,
        py::arg("max_blocks") = 0);

  m.def("gat_backward",
        [](uintptr_t grad_out, uintptr_t h, uintptr_t a_src, uintptr_t a_dst, uintptr_t indptr, uintptr_t indices,
           uintptr_t out, uintptr_t lse, uintptr_t grad_h, uintptr_t grad_a_src, uintptr_t grad_a_dst,
           uintptr_t colptr, uintptr_t csc_edge, uintptr_t csc_row, uintptr_t work, int64_t n_src, int64_t n_dst,
           int64_t heads, int64_t channels, int64_t n_edges, int dtype, int index_bits, double negative_slope,
           double dropout, int64_t seed, int64_t offset, uintptr_t stream, uintptr_t a_edge, uintptr_t grad_a_edge,
           int64_t max_blocks) {
          const GatArgs a = make_gat_args(n_src, n_dst, heads, channels, n_edges, dtype, index_bits, negative_slope,
                                          dropout, seed, offset, 1);
          if (channels > 256) throw std::invalid_argument("gat (CUDA C++): channels per head must be <= 256");
          if ((a_edge == 0) != (grad_a_edge == 0))
            throw std::invalid_argument("gat_backward: a_edge and grad_a_edge must be given together");
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = backward_cuda(a, BackwardPtrs{grad_out, h, a_src, a_dst, indptr, indices, out, lse, grad_h,
                                                grad_a_src, grad_a_dst, colptr, csc_edge, csc_row, work, a_edge,
                                                grad_a_edge},
                                (cudaStream_t)stream, max_blocks);
          }
          raise_if_cuda_error(err, "gat_backward");
        },
        py::arg("grad_out"), py::arg("h"), py::arg("a_src"), py::arg("a_dst"), py::arg("indptr"),
        py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("grad_h"), py::arg("grad_a_src"),
        py::arg("grad_a_dst"), py::arg("colptr"), py::arg("csc_edge"), py::arg("csc_row"), py::arg("work"),
        py::arg("n_src"), py::arg("n_dst"), py::arg("heads"), py::arg("channels"), py::arg("n_edges"),
        py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"), py::arg("dropout"), py::arg("seed"),
        py::arg("offset"), py::arg("stream") = 0, py::arg("a_edge") = 0, py::arg("grad_a_edge") = 0,
        py::arg("max_blocks") = 0);
}

}  // namespace slimops
