// The one way the CUDA glue launches a kernel: CudaLauncher{stream}.launch<
// kMaxThreads>(kernel, grid, block, args...), with kMaxThreads the kernel's
// __launch_bounds__. The variant dispatchers of *_kernels.cuh take the
// launcher as a template parameter, so the host execution of the same source
// (host/host_launch.h, HostLauncher) runs exactly the launches the GPU gets.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <utility>

#include "plan_overrides.cuh"

namespace alexnet_fast {

struct CudaLauncher {
  cudaStream_t stream;

  // The GPU runs the plans as they are, on outputs as allocated.
  PlanOverrides overrides() const { return {}; }
  void prepare_output(at::Tensor&) const {}

  template <int kMaxThreads, typename... Params, typename... Args>
  void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) const {
    static_assert(kMaxThreads >= 1 && kMaxThreads <= 1024, "a launch bound is 1 to 1024 threads");
    kernel<<<grid, block, 0, stream>>>(std::forward<Args>(args)...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace alexnet_fast
