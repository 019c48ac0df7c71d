// MX quantize of the AVX2 build (csrc/mx/mx_cpu.cpp, SLIMOPS_ISA=avx2) timed alone: normal fp32 (or its bf16
// truncation) into reused buffers, block 32, the minimum of ROUNDS calls.
// Usage: quantize FMT_ID DTYPE(0 fp32, 1 bf16) [THREADS=1] [ROWS=64] (ROWS x 4096 elements). Built by build.sh.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "csrc/mx/mx_cpu.h"
#include "kernels/mx/mx_element.cuh"
using namespace slimops;

int main(int argc, char** argv) {
  const int fmt = atoi(argv[1]), dt = atoi(argv[2]), threads = argc > 3 ? atoi(argv[3]) : 1;
  const int64_t R = argc > 4 ? atoi(argv[4]) : 64, L = 4096;
  const int bs = 32, rounds = R > 1024 ? 40 : 2000;
  const mx::Format f = mx::format_of(fmt);
  std::vector<float> x(R * L);
  std::mt19937 g(1);
  std::normal_distribution<float> n;
  for (auto& v : x) v = n(g);
  std::vector<uint16_t> xb(R * L);
  for (size_t i = 0; i < x.size(); ++i) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    xb[i] = (uint16_t)(u >> 16);
  }
  std::vector<uint8_t> d(R * L * f.bits / 8 + 64), s(R * L / bs);  // + 64: the NOPACK ablation overlaps
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const QuantizeArgs a{dt ? (const void*)xb.data() : (const void*)x.data(), dt, R, L, d.data(), s.data(), fmt, bs, 0,
                         false, 0, threads};
    const auto t0 = std::chrono::steady_clock::now();
    cpu::avx2::quantize(a);
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (us < best) best = us;
  }
  const double bytes = (double)(R * L * (dt ? 2 : 4) + d.size() + s.size());
  printf("fmt %d, %s, %d thread(s), %ld x %ld: %.1f us, %.3f ns per element, %.1f GB/s\n", fmt, dt ? "bf16" : "fp32",
         threads, (long)R, (long)L, best, best * 1e3 / (double)(R * L), bytes / best / 1e3);
}
