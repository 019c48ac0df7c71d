// A CUDA error as a Python RuntimeError (through pybind11) carrying
// cudaGetErrorString's text and the function that got it.
#pragma once
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace slimops {

inline void raise_if_cuda_error(cudaError_t err, const char* fn) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("slimops._C_cuda.") + fn + ": CUDA error " + std::to_string((int)err) +
                             " (" + cudaGetErrorName(err) + "): " + cudaGetErrorString(err));
}

}  // namespace slimops
