// Test-only overrides of the CUDA launch plans, so that every variant a plan
// can choose runs on small tensors under the host execution
// (host/host_launch.h): the GPU glue always passes the defaults.
#pragma once

#include <cstdint>

namespace alexnet_fast {

struct PlanOverrides {
  bool force_index64 = false;  // int64 indexing even where int32 fits
  int64_t channel_chunks = 0;  // LRN channels-first kernels: this many chunks (0: the plan's choice)
};

}  // namespace alexnet_fast
