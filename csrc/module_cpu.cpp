// pybind11 module slimops._C: the C++ CPU kernels of every family. Each family
// adds its functions in its own bind_<family>(m) (csrc/<family>/bind_<family>.cpp);
// a new family is one declaration and one call here. The functions take raw
// pointers and sizes (no torch types, so the module does not depend on one torch
// version's C++ ABI); the Python side allocates the tensors and wraps them as ops.
#include <pybind11/pybind11.h>

#include "csrc/common/isa.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace slimops {
void bind_mx(py::module_& m);
void bind_slicescale(py::module_& m);
void bind_rowq(py::module_& m);
void bind_gat(py::module_& m);
void bind_gatv2(py::module_& m);
void bind_mxgemm(py::module_& m);
}  // namespace slimops

PYBIND11_MODULE(_C, m) {
  m.doc() = "slimops C++ CPU kernels (raw pointers; use the torch.ops.slimops ops instead)";
  slimops::bind_mx(m);
  slimops::bind_slicescale(m);
  slimops::bind_rowq(m);
  slimops::bind_gat(m);
  slimops::bind_gatv2(m);
  slimops::bind_mxgemm(m);

  m.def("cpu_features", [] {
    py::dict d;
    d["isa"] = slimops::isa::name(slimops::isa::active());
    d["isa_detected"] = slimops::isa::name(slimops::isa::detect());
#ifdef _OPENMP
    d["openmp"] = true;
    d["openmp_max_threads"] = omp_get_max_threads();
#else
    d["openmp"] = false;
#endif
    return d;
  });
}
