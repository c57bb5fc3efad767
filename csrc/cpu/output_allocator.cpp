// The cache of large CPU output blocks; see output_allocator.h for why.
#include "output_allocator.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>

#include <cerrno>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>

#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#endif

namespace alexnet_fast {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;
// Below this, the page faults of a fresh buffer cost little next to a
// kernel's fixed overhead, and glibc's heap usually reuses the memory anyway.
constexpr size_t kMinCachedBytes = size_t(4) << 20;
constexpr size_t kDefaultLimitMiB = 1024;
constexpr const char* kLimitVariable = "ALEXNET_FAST_CPU_CACHE_MB";

struct Block {
  void* ptr;
  size_t size;  // a multiple of kHugePage
};

size_t limit_from_environment() {
  const char* text = std::getenv(kLimitVariable);
  if (text == nullptr || *text == '\0') return kDefaultLimitMiB << 20;
  char* end = nullptr;
  errno = 0;
  const long long mib = std::strtoll(text, &end, 10);
  TORCH_CHECK(errno == 0 && *end == '\0' && mib >= 0 && mib <= (int64_t(1) << 40), kLimitVariable,
              " must be a whole number of MiB >= 0 (0 keeps no idle memory), got '", text, "'");
  return static_cast<size_t>(mib) << 20;
}

Block* new_block(size_t size) {
  void* ptr = nullptr;
  const int status = posix_memalign(&ptr, kHugePage, size);
  TORCH_CHECK_WITH(OutOfMemoryError, status == 0 && ptr != nullptr,
                   "alexnet_fast: could not allocate ", size, " bytes of CPU memory for an output");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // A hint: fewer, larger page faults on first touch; ignored without THP. Not on the
  // last 2 MiB, which an output usually fills only in part: there a huge page would
  // make the resident memory exceed the output by up to 2 MiB, and with it PyTorch's
  // own allocator's peak (benches/memory_max_pool2d.py).
  if (size > kHugePage) (void)madvise(ptr, size - kHugePage, MADV_HUGEPAGE);
#endif
  return new Block{ptr, size};
}

void free_block(Block* block) {
  std::free(block->ptr);
  delete block;
}

// Idle blocks, most recently freed first. A lookup scans the list: it holds
// a handful of blocks (one per output of a step) and a scan costs far less
// than one page fault.
class BlockCache {
 public:
  explicit BlockCache(size_t limit) : limit_(limit) {}

  size_t limit() const { return limit_; }

  Block* take(size_t size) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if ((*it)->size == size) {
          Block* block = *it;
          idle_.erase(it);
          idle_bytes_ -= size;
          return block;
        }
      }
    }
    return new_block(size);
  }

  void give(Block* block) {
    std::list<Block*> evicted;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      idle_.push_front(block);
      idle_bytes_ += block->size;
      while (idle_bytes_ > limit_) {
        idle_bytes_ -= idle_.back()->size;
        evicted.splice(evicted.end(), idle_, std::prev(idle_.end()));
      }
    }
    for (Block* b : evicted) free_block(b);  // outside the lock
  }

  int64_t release_all() {
    std::list<Block*> evicted;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      evicted.swap(idle_);
      bytes = idle_bytes_;
      idle_bytes_ = 0;
    }
    for (Block* b : evicted) free_block(b);
    return static_cast<int64_t>(bytes);
  }

 private:
  std::mutex mutex_;
  std::list<Block*> idle_;
  size_t idle_bytes_ = 0;
  const size_t limit_;
};

BlockCache*& cache_pointer() {
  // Never destroyed: tensors may be freed during interpreter shutdown, after
  // static destructors have run.
  static BlockCache* cache = nullptr;
  return cache;
}

BlockCache& cache() {
  static std::once_flag once;
  std::call_once(once, [] {
    cache_pointer() = new BlockCache(limit_from_environment());
#if defined(__linux__)
    // A forked child (a DataLoader worker) starts with a fresh cache: the
    // parent's mutex may have been held by another thread at the fork. The
    // parent's idle blocks stay mapped (copy-on-write) in the child, unused.
    // It keeps the parent's limit, already checked: a fork handler must not throw.
    pthread_atfork(nullptr, nullptr, [] { cache_pointer() = new BlockCache(cache_pointer()->limit()); });
#endif
  });
  return *cache_pointer();
}

void return_block(void* context) {
  cache().give(static_cast<Block*>(context));
}

class OutputAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    if (nbytes < kMinCachedBytes) return c10::GetCPUAllocator()->allocate(nbytes);
    const size_t size = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
    Block* block = cache().take(size);
    return {block->ptr, block, &return_block, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

OutputAllocator& output_allocator() {
  static OutputAllocator* allocator = new OutputAllocator();  // never destroyed, as the cache
  return *allocator;
}

constexpr c10::DispatchKeySet kCpuKeys{c10::DispatchKey::CPU};

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat format) {
  TORCH_INTERNAL_ASSERT(options.device().is_cpu());
  return at::Tensor(at::detail::empty_generic(sizes, &output_allocator(), kCpuKeys,
                                              c10::typeMetaToScalarType(options.dtype()), format));
}

at::Tensor empty_output_like(const at::Tensor& like) {
  TORCH_INTERNAL_ASSERT(like.device().is_cpu());
  if (!like.is_non_overlapping_and_dense()) {
    return empty_output(like.sizes(), like.options(), like.suggest_memory_format());
  }
  return at::Tensor(at::detail::empty_strided_generic(like.sizes(), like.strides(), &output_allocator(), kCpuKeys,
                                                      like.scalar_type()));
}

int64_t release_cached_memory() {
  return cache().release_all();
}

}  // namespace alexnet_fast
