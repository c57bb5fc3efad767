// Storage for the large outputs of the CPU kernels.
//
// Why: glibc serves an allocation above its mmap threshold (at most 32 MB)
// with a fresh mmap and unmaps it on free, so each call that returns a large
// tensor has the kernel fault in and zero every 4 KB page first. For AlexNet's
// norm1 activations (32 x 96 x 55 x 55 float, 37 MB) that costs more than the
// ReLU+LRN kernel itself: ~8 ms against ~5 ms on the 2-core dev VM, where a
// copy into memory already mapped takes 1.5 ms.
//
// What: outputs of at least kMinCachedBytes get 2 MB aligned blocks, advised
// to use transparent huge pages (where THP is in "madvise" mode), and a freed
// block is kept for the next output of the same rounded size, as PyTorch's
// CUDA caching allocator does for device memory. Training and inference
// loops ask for the same sizes every step, so after the first step an output
// costs no page faults. Idle blocks are capped by bytes (least recently
// freed go first): ALEXNET_FAST_CPU_CACHE_MB, read once, default 1024, 0
// keeps none. release_cached_memory() hands every idle block back to the OS.
//
// The tensors are ordinary resizable CPU tensors; only their memory comes
// from here, uninitialised like at::empty's.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/MemoryFormat.h>

#include <cstdint>

namespace alexnet_fast {

// Like at::empty(sizes, options.memory_format(format)) on the CPU.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options,
                        at::MemoryFormat format = at::MemoryFormat::Contiguous);

// Like at::empty_like(like) for a dense `like`: the same sizes and strides.
at::Tensor empty_output_like(const at::Tensor& like);

// Frees every idle cached block; returns the bytes freed.
int64_t release_cached_memory();

}  // namespace alexnet_fast
