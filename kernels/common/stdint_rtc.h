// The fixed-width integer types of the kernel headers. NVRTC (__CUDACC_RTC__) has no C
// library headers, so there they are defined here (long long is 64 bits on every
// CUDA target); every other compiler gets <stdint.h>.
#pragma once

#if defined(__CUDACC_RTC__)
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long long uintptr_t;
#ifndef UINT32_MAX
#define UINT32_MAX 0xFFFFFFFFu
#endif
#else
#include <stdint.h>
#endif
