// Arguments of the Slice-and-Scale kernels, shared by the CPU (csrc/slicescale/slicescale_cpu.cpp)
// and CUDA (kernels/slicescale/slicescale_kernels.cu) builds: a plain struct, no host-only
// headers. Its checks are csrc/slicescale/slicescale_args.h. Canonical layout: packed source
// data (rows, ceil(L * bits_src / 8)) and scales (rows, ceil(L / block)), both contiguous;
// the outputs the same in the target format.
#pragma once
#include <stdint.h>

namespace slimops {

struct ConvertArgs {
  const uint8_t* data; const uint8_t* scales; int64_t rows, length;
  uint8_t* out_data; uint8_t* out_scales;
  int src, dst, block_size; bool truncate;
  int num_threads;  // CPU only
  // The conversion report (kernels/slicescale/slicescale_element.cuh, ReportCount): nullptr for
  // none, else kNumCounts int64 block counts, written by the CPU kernel, added to (atomically, from
  // zero set by the caller) by the CUDA kernel.
  int64_t* counts;
};

}  // namespace slimops
