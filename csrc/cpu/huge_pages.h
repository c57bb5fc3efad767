// Large outputs of the CPU kernels are fresh allocations: glibc serves them
// with a new mmap, so every 4 KB page is faulted in and zeroed by the OS on
// first write, which costs more than the kernels themselves (about 8 ms for
// 37 MB on the 2-core dev VM against ~3 ms with 2 MB pages). Where
// transparent huge pages are in "madvise" mode, ask for them on the 2 MB
// aligned interior of the buffer before the first write. A pure hint: no
// effect on results, a no-op where unsupported, and the memory is released
// as usual when the tensor is freed.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace alexnet_fast {

inline void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const size_t nbytes = t.numel() * t.element_size();
  if (nbytes < 4 * kHuge) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t a = (p + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t b = (p + nbytes) & ~(kHuge - 1);
  if (b > a) (void)madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

}  // namespace alexnet_fast
