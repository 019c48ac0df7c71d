// Host launchers of the GAT CUDA kernels (kernels/gat/gat_kernels.cu). Device pointers, the
// same GatArgs as the CPU kernels (csrc/gat/gat_cpu.h; num_threads unused), and a stream.
// Each returns the launch status (cudaGetLastError after the launches). Arguments are
// assumed checked (csrc/gat/gat_args.h); the CSR's values are not (that would need a host
// sync): every kernel guards its reads, so a malformed CSR never reads out of range (an
// out-of-range source id is skipped, indptr is clamped to [0, E] and made non-decreasing).
#pragma once
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kernels/gat/gat_math.cuh"
#include "kernels/gat/gat_types.h"

namespace slimops {
namespace gat {

struct CudaBackwardPtrs {
  uintptr_t grad_out, h, a_src, a_dst, indptr, indices, out, lse;
  uintptr_t grad_h, grad_a_src, grad_a_dst;
  uintptr_t colptr;    // int64 [n_src + 1]: the transposed index, built by the caller (torch ops)
  uintptr_t csc_edge;  // index type [E]: CSR positions grouped by source (stable)
  uintptr_t csc_row;   // index type [E]: their destination rows
  uintptr_t delta;     // float workspace [n_dst * heads]
};

cudaError_t forward_cuda(const GatArgs& a, const ForwardPtrs& p, cudaStream_t stream);
cudaError_t backward_cuda(const GatArgs& a, const CudaBackwardPtrs& p, cudaStream_t stream);

}  // namespace gat
}  // namespace slimops
