// The host launcher of the CUDA kernels (cuda_shim.h says what this checks
// and what it cannot): HostLauncher::launch<kMaxThreads>(kernel, grid, block,
// args...) runs every (block, thread) of the grid on the CPU. Blocks are
// spread over the host threads (at::parallel_for); the threads of a block run
// one after another. It refuses every launch a GPU would refuse.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstring>

#include "../plan_overrides.cuh"
#include "cuda_shim.h"

namespace alexnet_fast::cuda_host {

// The test-only plan overrides of every host launch (set_plan_overrides, an
// op of alexnet_fast._cuda_host).
PlanOverrides& plan_overrides();

// Notes a launch: the kernel's symbol name (which carries the template
// arguments: the variant), grid and block, for the tests to read
// (cuda_host_take_launches).
void record_launch(const void* kernel, dim3 grid, dim3 block);

struct HostLauncher {
  PlanOverrides overrides() const { return plan_overrides(); }

  // Every output byte 0xFF before the kernels run (NaN for floats, 255 or -1
  // for indices): an element a kernel forgets to write fails the comparison.
  void prepare_output(at::Tensor& t) const {
    if (t.numel() > 0) std::memset(t.mutable_data_ptr(), 0xFF, t.nbytes());
  }

  template <int kMaxThreads, typename... Params, typename... Args>
  void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) const {
    static_assert(kMaxThreads >= 1 && kMaxThreads <= 1024, "a launch bound is 1 to 1024 threads");
    const uint64_t threads = uint64_t{block.x} * block.y * block.z;
    TORCH_CHECK(threads >= 1 && grid.x >= 1 && grid.y >= 1 && grid.z >= 1,
                "cuda_host: launch refused, empty grid (", grid.x, ", ", grid.y, ", ", grid.z, ") or block (",
                block.x, ", ", block.y, ", ", block.z, ")");
    TORCH_CHECK(threads <= 1024 && block.x <= 1024 && block.y <= 1024 && block.z <= 64,
                "cuda_host: launch refused, block (", block.x, ", ", block.y, ", ", block.z,
                ") exceeds the CUDA limits (1024 threads; x, y <= 1024, z <= 64)");
    TORCH_CHECK(threads <= static_cast<uint64_t>(kMaxThreads), "cuda_host: launch refused, block of ", threads,
                " threads exceeds the kernel's __launch_bounds__(", kMaxThreads, ")");
    TORCH_CHECK(grid.x <= 2147483647u && grid.y <= 65535u && grid.z <= 65535u, "cuda_host: launch refused, grid (",
                grid.x, ", ", grid.y, ", ", grid.z, ") exceeds the CUDA limits (x < 2^31, y and z <= 65535)");
    record_launch(reinterpret_cast<const void*>(kernel), grid, block);
    const int64_t blocks = int64_t{grid.x} * grid.y * grid.z;
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      ThreadIndex& index = current_thread;
      index.grid_size = grid;
      index.block_size = block;
      for (int64_t b = begin; b < end; ++b) {
        index.block_index = dim3(static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                              static_cast<unsigned>(b / (int64_t{grid.x} * grid.y)));
        for (unsigned z = 0; z < block.z; ++z)
          for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x) {
              index.thread_index = dim3(x, y, z);
              kernel(args...);
            }
      }
    });
  }
};

}  // namespace alexnet_fast::cuda_host
