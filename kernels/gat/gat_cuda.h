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

// The backward's transposed index (colptr, csc_edge, csc_row of BackwardPtrs) is built by the caller with
// guarded torch ops (python/slimops/gat/reference.py, transposed_index); grad_a_edge, when given, must be
// zero-filled (a position outside every row of a malformed CSR is not written).
// max_blocks caps the grid (<= 0, or above 2^30: 2^30); the warps grid-stride over the (node, head) pairs.
cudaError_t forward_cuda(const GatArgs& a, const ForwardPtrs& p, cudaStream_t stream, int64_t max_blocks);
cudaError_t backward_cuda(const GatArgs& a, const BackwardPtrs& p, cudaStream_t stream, int64_t max_blocks);

}  // namespace gat
}  // namespace slimops
