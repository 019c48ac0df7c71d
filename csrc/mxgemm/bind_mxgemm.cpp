// The mxgemm family's function in slimops._C (csrc/module_cpu.cpp): mx_linear on raw pointers (no
// torch types); python/slimops/mxgemm/cpu.py allocates the output and wraps it as the op's CPU
// kernel. Arguments are checked (mxgemm_args.h) before any work; the instruction set is picked at
// run time (csrc/common/isa.h), and inside the AVX-512 build the bf16 dot-product kernels by the
// CPU's AVX512_BF16 / AVX512_VBMI flags.
#include <pybind11/pybind11.h>

#include "csrc/common/isa.h"
#include "csrc/mxgemm/mxgemm_args.h"
#include "csrc/mxgemm/mxgemm_cpu.h"

namespace py = pybind11;

namespace slimops {

void bind_mxgemm(py::module_& m) {
  m.def("mx_linear",
        [](uintptr_t x, int x_dtype, int64_t M, int64_t K, uintptr_t w_data, uintptr_t w_scales, int64_t N, int fmt,
           int block_size, uintptr_t bias, int bias_dtype, uintptr_t y, int num_threads) {
          const LinearArgs a = make_linear_args(x, x_dtype, M, K, w_data, w_scales, N, fmt, block_size, bias,
                                                bias_dtype, y, num_threads);
          py::gil_scoped_release release;
          SLIMOPS_ISA_DISPATCH(mxgemm_cpu, linear, a)
        },
        "y = x @ dequantize(W).T + bias for a packed MX weight W [N, K] (raw pointers)", py::arg("x"),
        py::arg("x_dtype"), py::arg("M"), py::arg("K"), py::arg("w_data"), py::arg("w_scales"), py::arg("N"),
        py::arg("fmt"), py::arg("block_size"), py::arg("bias"), py::arg("bias_dtype"), py::arg("y"),
        py::arg("num_threads") = 1);
  m.def("mx_linear_path",
        [](int x_dtype, int64_t M, int64_t K, int64_t N, int fmt, int block_size) {
          LinearArgs a{};
          a.x_dtype = x_dtype, a.M = M, a.K = K, a.N = N, a.fmt = fmt, a.block_size = block_size, a.num_threads = 1;
          const char* p = "";
          switch (isa::active()) {
#if defined(__x86_64__)
            case isa::Isa::kAvx512: p = mxgemm_cpu::avx512::linear_path(a); break;
            case isa::Isa::kAvx2: p = mxgemm_cpu::avx2::linear_path(a); break;
#endif
            default: p = mxgemm_cpu::baseline::linear_path(a); break;
          }
          return std::string(p);
        },
        "Which kernel mx_linear runs for these sizes on this CPU (for tests and reports)", py::arg("x_dtype"),
        py::arg("M"), py::arg("K"), py::arg("N"), py::arg("fmt"), py::arg("block_size"));
}

}  // namespace slimops
