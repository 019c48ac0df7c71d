// Arguments of the mxgemm kernels (y = x @ W.T + bias, W an MX weight blocked along K): a plain
// struct with no host-only headers, for the CPU build (csrc/mxgemm/) and any device build. The
// checks are csrc/mxgemm/mxgemm_args.h.
// Layout: x [M, K] row-major (dtype x_dtype: kF32, kBF16 or kF16 of kernels/mx/mx_params.h);
// w_data [N, packed_bytes(K)] and w_scales [N, ceil(K / block_size)], contiguous, as slimops packs
// an [N, K] weight along its last axis; bias [N] (bias_dtype) or null; y [M, N] in x's dtype.
#pragma once
#include "../common/stdint_rtc.h"
#include "../mx/mx_params.h"  // DType

namespace slimops {

struct LinearArgs {
  const void* x; int x_dtype; int64_t M, K;
  const uint8_t* w_data; const uint8_t* w_scales; int64_t N;
  int fmt, block_size;
  const void* bias; int bias_dtype;  // bias null: no bias
  void* y;
  int num_threads;  // CPU only
};

}  // namespace slimops
