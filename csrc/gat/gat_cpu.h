// GAT attention on the CPU: argument structs and kernel entry points (raw pointers).
#pragma once

#include <stdint.h>

#include "gat/gat_types.h"

namespace slimops {
namespace gat {

void forward_cpu(const GatArgs& a, const ForwardPtrs& p);
void backward_cpu(const GatArgs& a, const BackwardPtrs& p);

// Data-dependent CSR checks (throws std::invalid_argument).
void check_csr(const GatArgs& a, uintptr_t indptr, uintptr_t indices);

}  // namespace gat
}  // namespace slimops
