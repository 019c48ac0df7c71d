// Output buffers and their first touch. A large tensor that torch allocates on the
// CPU is usually a fresh anonymous mapping (glibc's mmap threshold is at most 32 MB),
// so an op that writes one pays a page fault for every 4 KiB page it first touches:
// on the 2-core development VM that was most of the time of an fp32 dequantize.
// With SLIMOPS_HUGE_PAGES=1, prefer_huge_pages asks the kernel for transparent huge
// pages (MADV_HUGEPAGE) on the 2 MiB-aligned interior of such a buffer before it is
// written, so that it faults once per 2 MiB instead: on that VM two to three times
// faster on average, but where THP defrag is "madvise" a fault that has to compact
// memory first can stall (seen: 0.1 to 1.2 s for one call), which is why it is opt-in,
// as torch's own THP_MEM_ALLOC_ENABLE is. Only a hint: where THP is off ("never"), on
// memory that is already mapped, or off Linux, nothing changes; the bytes written are
// the same either way. Small buffers are left alone (no syscall).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace slimops {

constexpr size_t kHugePage = size_t(2) << 20;

inline void prefer_huge_pages(void* p, size_t nbytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (nbytes < 4 * kHugePage) return;
  const char* env = getenv("SLIMOPS_HUGE_PAGES");
  if (!env || env[0] != '1') return;
  const uintptr_t begin = ((uintptr_t)p + kHugePage - 1) & ~(uintptr_t)(kHugePage - 1);
  const uintptr_t end = ((uintptr_t)p + nbytes) & ~(uintptr_t)(kHugePage - 1);
  if (end > begin) (void)madvise((void*)begin, end - begin, MADV_HUGEPAGE);  // a hint: errors ignored
#else
  (void)p;
  (void)nbytes;
#endif
}

}  // namespace slimops
