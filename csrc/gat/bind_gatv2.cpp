// slimops._C entries of the GATv2 op (raw pointers; python/slimops/gat/v2_cpu.py wraps them).
#include <pybind11/pybind11.h>

#include "csrc/common/isa.h"
#include "csrc/gat/gat_args.h"
#include "csrc/gat/gatv2_args.h"
#include "csrc/gat/gatv2_cpu.h"

namespace py = pybind11;

namespace slimops {

#if defined(__x86_64__)
#define GATV2_DISPATCH(FN, A, P)                                           \
  switch (::slimops::isa::active()) {                                      \
    case ::slimops::isa::Isa::kAvx512: gatv2::avx512::FN(A, P); break;     \
    case ::slimops::isa::Isa::kAvx2: gatv2::avx2::FN(A, P); break;         \
    default: gatv2::baseline::FN(A, P); break;                             \
  }
#else
#define GATV2_DISPATCH(FN, A, P) gatv2::baseline::FN(A, P);
#endif

void bind_gatv2(py::module_& m) {
  using namespace slimops::gat;
  m.def("gatv2_forward",
        [](uintptr_t xl, uintptr_t xr, uintptr_t att, uintptr_t edge_attr, uintptr_t w_edge, uintptr_t indptr,
           uintptr_t indices, uintptr_t out, uintptr_t lse, int64_t n_src, int64_t n_dst, int64_t heads,
           int64_t channels, int64_t n_edges, int64_t edge_dim, int dtype, int index_bits, double negative_slope,
           double dropout, int64_t seed, int64_t offset, int num_threads) {
          const Gatv2Args a = make_gatv2_args(n_src, n_dst, heads, channels, n_edges, edge_dim, 1, dtype, index_bits,
                                              negative_slope, dropout, seed, offset, num_threads);
          py::gil_scoped_release release;
          check_csr(a.g, indptr, indices);
          const Gatv2ForwardPtrs p{xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse};
          GATV2_DISPATCH(forward, a, p)
        },
        py::arg("xl"), py::arg("xr"), py::arg("att"), py::arg("edge_attr"), py::arg("w_edge"), py::arg("indptr"),
        py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("n_src"), py::arg("n_dst"), py::arg("heads"),
        py::arg("channels"), py::arg("n_edges"), py::arg("edge_dim"), py::arg("dtype"), py::arg("index_bits"),
        py::arg("negative_slope"), py::arg("dropout"), py::arg("seed"), py::arg("offset"), py::arg("num_threads") = 1);

  m.def("gatv2_backward",
        [](uintptr_t grad_out, uintptr_t xl, uintptr_t xr, uintptr_t att, uintptr_t edge_attr, uintptr_t w_edge,
           uintptr_t indptr, uintptr_t indices, uintptr_t out, uintptr_t lse, uintptr_t grad_xl, uintptr_t grad_xr,
           uintptr_t grad_att, uintptr_t grad_edge_attr, uintptr_t grad_w_edge, uintptr_t colptr, uintptr_t csc_edge,
           uintptr_t csc_row, uintptr_t ws, uintptr_t partial, int64_t n_src, int64_t n_dst, int64_t heads,
           int64_t channels, int64_t n_edges, int64_t edge_dim, int64_t chunk, int dtype, int index_bits,
           double negative_slope, double dropout, int64_t seed, int64_t offset, int num_threads) {
          const Gatv2Args a = make_gatv2_args(n_src, n_dst, heads, channels, n_edges, edge_dim, chunk, dtype,
                                              index_bits, negative_slope, dropout, seed, offset, num_threads);
          py::gil_scoped_release release;
          check_csr(a.g, indptr, indices);
          const Gatv2BackwardPtrs p{grad_out, xl,      xr,       att,     edge_attr, w_edge,      indptr,
                                    indices,  out,     lse,      grad_xl, grad_xr,   grad_att,    grad_edge_attr,
                                    grad_w_edge, colptr, csc_edge, csc_row, ws,      partial};
          GATV2_DISPATCH(backward, a, p)
        },
        py::arg("grad_out"), py::arg("xl"), py::arg("xr"), py::arg("att"), py::arg("edge_attr"), py::arg("w_edge"),
        py::arg("indptr"), py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("grad_xl"),
        py::arg("grad_xr"), py::arg("grad_att"), py::arg("grad_edge_attr"), py::arg("grad_w_edge"),
        py::arg("colptr"), py::arg("csc_edge"), py::arg("csc_row"), py::arg("ws"), py::arg("partial"),
        py::arg("n_src"), py::arg("n_dst"), py::arg("heads"), py::arg("channels"), py::arg("n_edges"),
        py::arg("edge_dim"), py::arg("chunk"), py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"),
        py::arg("dropout"), py::arg("seed"), py::arg("offset"), py::arg("num_threads") = 1);
}

}  // namespace slimops
