// Arguments of the MX kernels, shared by the CPU (csrc/mx/mx_cpu.cpp) and CUDA
// (kernels/mx/mx_kernels.cu) builds: plain structs, no host-only headers, so that
// device code can include them. Their checks are csrc/mx/mx_args.h.
// Layout: the canonical one, a contiguous (rows, L) tensor whose last axis is cut
// into blocks; packed data (rows, ceil(L * bits / 8)), scales (rows, ceil(L / block)).
#pragma once
#include "../common/stdint_rtc.h"  // <stdint.h>, or the typedefs under NVRTC

namespace slimops {

enum DType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

struct QuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  uint8_t* data; uint8_t* scales;
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed;
  int num_threads;  // CPU only
};

struct DequantizeArgs {
  const uint8_t* data; const uint8_t* scales; int64_t rows, length;
  void* out; int dtype; int fmt, block_size;
  int num_threads;  // CPU only
};

struct FakeQuantizeArgs {
  const void* x; int dtype; int64_t rows, length;
  void* out;  // same dtype as x
  int fmt, block_size, scale_mode; bool stochastic; uint32_t seed;
  int num_threads;  // CPU only
};

}  // namespace slimops
