// Host launchers of the GATv2 CUDA kernels (kernels/gat/gatv2_kernels.cu). Device pointers, the same
// Gatv2Args as the CPU kernels (num_threads unused; chunk = CSR positions per partial sum), and a stream.
// Each returns the launch status (cudaGetLastError after the launches). Arguments are assumed checked
// (csrc/gat/gatv2_args.h); the CSR's values are not (a host sync): every kernel guards its reads, as the
// GAT op's do (kernels/gat/gat_cuda.h).
#pragma once
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kernels/gat/gatv2_types.h"

namespace slimops {
namespace gat {

struct Gatv2CudaBackwardPtrs {
  uintptr_t grad_out, xl, xr, att, edge_attr, w_edge, indptr, indices, out, lse;
  uintptr_t grad_xl, grad_xr;
  uintptr_t row;           // index type [E]: the destination row of each CSR position (built by the caller)
  uintptr_t colptr;        // int64 [n_src + 1]: the transposed index, built by the caller (torch ops)
  uintptr_t csc_edge;      // index type [E]: CSR positions grouped by source (stable)
  uintptr_t csc_row;       // int64 [E]: their destination rows (N_dst: a position outside every row)
  uintptr_t ws;            // float [2, E, H]: p = alpha * w, then de
  uintptr_t gea;           // float [E, D], zeroed by the caller: grad_edge_attr in fp32
  uintptr_t partial_att;   // float [n_chunks, H * C]: per-chunk sums of grad_att
  uintptr_t partial_w;     // float [n_chunks, H * C, D], zeroed by the caller: per-chunk sums of grad_w_edge
};

cudaError_t gatv2_forward_cuda(const Gatv2Args& a, const Gatv2ForwardPtrs& p, cudaStream_t stream);
cudaError_t gatv2_backward_cuda(const Gatv2Args& a, const Gatv2CudaBackwardPtrs& p, cudaStream_t stream);

}  // namespace gat
}  // namespace slimops
