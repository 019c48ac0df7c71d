// slimops._C_cuda entries of the GATv2 op (device pointers and a stream; python/slimops/gat/v2_cuda.py wraps
// them). Shapes and dtypes are checked (gatv2_args.h) before any launch; the CSR's values are not (a host
// sync), the kernels guard their reads instead. A CUDA launch error becomes a RuntimeError.
#include <pybind11/pybind11.h>

#include <cuda_runtime_api.h>

#include <stdexcept>

#include "csrc/common/cuda_errors.h"
#include "csrc/gat/gatv2_args.h"
#include "kernels/gat/gatv2_cuda.h"

namespace py = pybind11;

namespace slimops {

void bind_gatv2_cuda(py::module_& m) {
  using namespace slimops::gat;
  m.def("gatv2_forward",
        [](uintptr_t xl, uintptr_t xr, uintptr_t att, uintptr_t edge_attr, uintptr_t w_edge, uintptr_t indptr,
           uintptr_t indices, uintptr_t out, uintptr_t lse, int64_t n_src, int64_t n_dst, int64_t heads,
           int64_t channels, int64_t n_edges, int64_t edge_dim, int dtype, int index_bits, double negative_slope,
           double dropout, int64_t seed, int64_t offset, uintptr_t stream) {
          const Gatv2Args a = make_gatv2_args(n_src, n_dst, heads, channels, n_edges, edge_dim, 1, dtype, index_bits,
                                              negative_slope, dropout, seed, offset, 1);
          if (channels > 256) throw std::invalid_argument("gatv2 (CUDA C++): channels per head must be <= 256");
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = gatv2_forward_cuda(a, Gatv2ForwardPtrs{xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse},
                                     (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "gatv2_forward");
        },
        py::arg("xl"), py::arg("xr"), py::arg("att"), py::arg("edge_attr"), py::arg("w_edge"), py::arg("indptr"),
        py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("n_src"), py::arg("n_dst"), py::arg("heads"),
        py::arg("channels"), py::arg("n_edges"), py::arg("edge_dim"), py::arg("dtype"), py::arg("index_bits"),
        py::arg("negative_slope"), py::arg("dropout"), py::arg("seed"), py::arg("offset"), py::arg("stream") = 0);

  m.def("gatv2_backward",
        [](uintptr_t grad_out, uintptr_t xl, uintptr_t xr, uintptr_t att, uintptr_t edge_attr, uintptr_t w_edge,
           uintptr_t indptr, uintptr_t indices, uintptr_t out, uintptr_t lse, uintptr_t grad_xl, uintptr_t grad_xr,
           uintptr_t row, uintptr_t colptr, uintptr_t csc_edge, uintptr_t csc_row, uintptr_t ws, uintptr_t gea,
           uintptr_t partial_att, uintptr_t partial_w, int64_t n_src, int64_t n_dst, int64_t heads, int64_t channels,
           int64_t n_edges, int64_t edge_dim, int64_t chunk, int dtype, int index_bits, double negative_slope,
           double dropout, int64_t seed, int64_t offset, uintptr_t stream) {
          const Gatv2Args a = make_gatv2_args(n_src, n_dst, heads, channels, n_edges, edge_dim, chunk, dtype,
                                              index_bits, negative_slope, dropout, seed, offset, 1);
          if (channels > 256) throw std::invalid_argument("gatv2 (CUDA C++): channels per head must be <= 256");
          cudaError_t err;
          {
            py::gil_scoped_release release;
            err = gatv2_backward_cuda(a,
                                      Gatv2CudaBackwardPtrs{grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices,
                                                            out, lse, grad_xl, grad_xr, row, colptr, csc_edge,
                                                            csc_row, ws, gea, partial_att, partial_w},
                                      (cudaStream_t)stream);
          }
          raise_if_cuda_error(err, "gatv2_backward");
        },
        py::arg("grad_out"), py::arg("xl"), py::arg("xr"), py::arg("att"), py::arg("edge_attr"), py::arg("w_edge"),
        py::arg("indptr"), py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("grad_xl"),
        py::arg("grad_xr"), py::arg("row"), py::arg("colptr"), py::arg("csc_edge"), py::arg("csc_row"),
        py::arg("ws"), py::arg("gea"), py::arg("partial_att"), py::arg("partial_w"), py::arg("n_src"),
        py::arg("n_dst"), py::arg("heads"), py::arg("channels"), py::arg("n_edges"), py::arg("edge_dim"),
        py::arg("chunk"), py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"), py::arg("dropout"),
        py::arg("seed"), py::arg("offset"), py::arg("stream") = 0);
}

}  // namespace slimops
