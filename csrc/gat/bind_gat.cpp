// slimops._C entries of the GAT family (raw pointers; python/slimops/gat/cpu.py wraps them).
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "csrc/common/isa.h"
#include "csrc/gat/gat_args.h"
#include "csrc/gat/gat_cpu.h"

namespace py = pybind11;

namespace slimops {

#if defined(__x86_64__)
#define GAT_DISPATCH(FN, A, P)                                           \
  switch (::slimops::isa::active()) {                                    \
    case ::slimops::isa::Isa::kAvx512: gat::avx512::FN(A, P); break;     \
    case ::slimops::isa::Isa::kAvx2: gat::avx2::FN(A, P); break;         \
    default: gat::baseline::FN(A, P); break;                             \
  }
#else
#define GAT_DISPATCH(FN, A, P) gat::baseline::FN(A, P);
#endif

void bind_gat(py::module_& m) {
  using namespace slimops::gat;
  auto scores_args = [](int64_t nodes, int64_t heads, int64_t channels, int64_t k, int dtype, int num_threads) {
    if (nodes < 0 || heads < 1 || channels < 1 || k < 1) throw std::invalid_argument("gat_scores: bad sizes");
    if (dtype != kF32 && dtype != kBF16 && dtype != kF16) throw std::invalid_argument("gat_scores: bad dtype code");
    return ScoresArgs{nodes, heads, channels, k, dtype, num_threads};
  };
  m.def("gat_scores",
        [scores_args](uintptr_t h, uintptr_t att, uintptr_t s, int64_t nodes, int64_t heads, int64_t channels,
                      int64_t k, int dtype, int num_threads) {
          const ScoresArgs a = scores_args(nodes, heads, channels, k, dtype, num_threads);
          py::gil_scoped_release release;
          GAT_DISPATCH(scores, a, (ScoresPtrs{h, att, s}))
        },
        py::arg("h"), py::arg("att"), py::arg("s"), py::arg("nodes"), py::arg("heads"), py::arg("channels"),
        py::arg("k"), py::arg("dtype"), py::arg("num_threads") = 1);
  m.def("gat_scores_backward",
        [scores_args](uintptr_t grad, uintptr_t h, uintptr_t att, uintptr_t grad_h_in, uintptr_t grad_h_out,
                      uintptr_t grad_att, uintptr_t work, int64_t nodes, int64_t heads, int64_t channels, int64_t k,
                      int dtype, int num_threads) {
          const ScoresArgs a = scores_args(nodes, heads, channels, k, dtype, num_threads);
          py::gil_scoped_release release;
          GAT_DISPATCH(scores_backward, a, (ScoresBackwardPtrs{grad, h, att, grad_h_in, grad_h_out, grad_att, work}))
        },
        py::arg("grad"), py::arg("h"), py::arg("att"), py::arg("grad_h_in"), py::arg("grad_h_out"),
        py::arg("grad_att"), py::arg("work"), py::arg("nodes"), py::arg("heads"), py::arg("channels"), py::arg("k"),
        py::arg("dtype"), py::arg("num_threads") = 1);
  m.def("gat_forward",
        [](uintptr_t h, uintptr_t a_src, uintptr_t a_dst, uintptr_t indptr, uintptr_t indices, uintptr_t out,
           uintptr_t lse, int64_t n_src, int64_t n_dst, int64_t heads, int64_t channels, int64_t n_edges, int dtype,
           int index_bits, double negative_slope, double dropout, int64_t seed, int64_t offset, int num_threads,
           uintptr_t a_edge, uintptr_t bias) {
          const GatArgs a = make_gat_args(n_src, n_dst, heads, channels, n_edges, dtype, index_bits, negative_slope,
                                          dropout, seed, offset, num_threads);
          py::gil_scoped_release release;
          check_csr(a, indptr, indices);
          const ForwardPtrs p{h, a_src, a_dst, indptr, indices, out, lse, a_edge, bias};
          GAT_DISPATCH(forward, a, p)
        },
        py::arg("h"), py::arg("a_src"), py::arg("a_dst"), py::arg("indptr"), py::arg("indices"), py::arg("out"),
        py::arg("lse"), py::arg("n_src"), py::arg("n_dst"), py::arg("heads"), py::arg("channels"),
        py::arg("n_edges"), py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"), py::arg("dropout"),
        py::arg("seed"), py::arg("offset"), py::arg("num_threads") = 1, py::arg("a_edge") = 0, py::arg("bias") = 0);

  m.def("gat_backward",
        [](uintptr_t grad_out, uintptr_t h, uintptr_t a_src, uintptr_t a_dst, uintptr_t indptr, uintptr_t indices,
           uintptr_t out, uintptr_t lse, uintptr_t grad_h, uintptr_t grad_a_src, uintptr_t grad_a_dst,
           uintptr_t colptr, uintptr_t csc_edge, uintptr_t csc_row, uintptr_t work, int64_t n_src, int64_t n_dst,
           int64_t heads, int64_t channels, int64_t n_edges, int dtype, int index_bits, double negative_slope,
           double dropout, int64_t seed, int64_t offset, int num_threads, uintptr_t a_edge, uintptr_t grad_a_edge,
           bool csc_ready, uintptr_t bias, uintptr_t grad_bias) {
          GatArgs a = make_gat_args(n_src, n_dst, heads, channels, n_edges, dtype, index_bits, negative_slope,
                                    dropout, seed, offset, num_threads);
          a.csc_ready = csc_ready;
          py::gil_scoped_release release;
          check_csr(a, indptr, indices);
          if ((a_edge == 0) != (grad_a_edge == 0))
            throw std::invalid_argument("gat_backward: a_edge and grad_a_edge must be given together");
          const BackwardPtrs p{grad_out, h, a_src, a_dst, indptr, indices, out, lse, grad_h, grad_a_src,
                               grad_a_dst, colptr, csc_edge, csc_row, work, a_edge, grad_a_edge, bias,
                               grad_bias};
          GAT_DISPATCH(backward, a, p)
        },
        py::arg("grad_out"), py::arg("h"), py::arg("a_src"), py::arg("a_dst"), py::arg("indptr"),
        py::arg("indices"), py::arg("out"), py::arg("lse"), py::arg("grad_h"), py::arg("grad_a_src"),
        py::arg("grad_a_dst"), py::arg("colptr"), py::arg("csc_edge"), py::arg("csc_row"), py::arg("work"),
        py::arg("n_src"), py::arg("n_dst"), py::arg("heads"), py::arg("channels"), py::arg("n_edges"),
        py::arg("dtype"), py::arg("index_bits"), py::arg("negative_slope"), py::arg("dropout"), py::arg("seed"),
        py::arg("offset"), py::arg("num_threads") = 1, py::arg("a_edge") = 0, py::arg("grad_a_edge") = 0,
        py::arg("csc_ready") = false, py::arg("bias") = 0, py::arg("grad_bias") = 0);
  // The backward's transposed index of a CSR (CSR positions grouped by source, stable, with their rows), built
  // once per graph by a caller that keeps it (gat_backward(..., csc_ready=True) then skips building it).
  m.def("gat_transpose",
        [](uintptr_t indptr, uintptr_t indices, uintptr_t colptr, uintptr_t csc_edge, uintptr_t csc_row,
           int64_t n_src, int64_t n_dst, int64_t n_edges, int index_bits) {
          const GatArgs a = make_gat_args(n_src, n_dst, 1, 1, n_edges, kF32, index_bits, 0.0, 0.0, 0, 0, 1);
          py::gil_scoped_release release;
          check_csr(a, indptr, indices);
          BackwardPtrs p{};
          p.indptr = indptr, p.indices = indices, p.colptr = colptr, p.csc_edge = csc_edge, p.csc_row = csc_row;
          GAT_DISPATCH(transpose_csc, a, p)
        },
        py::arg("indptr"), py::arg("indices"), py::arg("colptr"), py::arg("csc_edge"), py::arg("csc_row"),
        py::arg("n_src"), py::arg("n_dst"), py::arg("n_edges"), py::arg("index_bits"));
}

}  // namespace slimops
