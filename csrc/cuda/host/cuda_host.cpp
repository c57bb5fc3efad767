// alexnet_fast._cuda_host: the host execution of the CUDA kernels as ops on
// CPU tensors. Each op <name>_cuda_host takes exactly the arguments of the
// real op <name> (op_schemas.h); its kernel is registered next to the glue
// (host/*_kernel.cpp). Fake kernels and autograd come from Python, as for
// the real ops. Plus one test-only op that steers the launch plans.
#include <Python.h>
#include <ATen/ops/empty.h>
#include <cxxabi.h>
#include <dlfcn.h>
#include <torch/library.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "../../op_schemas.h"
#include "cuda_shim.h"
#include "host_launch.h"

extern "C" {
// Importing `alexnet_fast._cuda_host` loads this library and runs the static
// registrations below; the module itself is empty.
PyObject* PyInit__cuda_host(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_cuda_host", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

namespace alexnet_fast::cuda_host {

PlanOverrides& plan_overrides() {
  static PlanOverrides overrides;
  return overrides;
}

namespace {

std::mutex launches_mutex;
std::vector<std::string> launches;

}  // namespace

void record_launch(const void* kernel, dim3 grid, dim3 block) {
  Dl_info info{};
  std::string name = "?";
  if (dladdr(kernel, &info) != 0 && info.dli_sname != nullptr) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    name = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
    std::free(demangled);
  }
  name += " grid=(" + std::to_string(grid.x) + ", " + std::to_string(grid.y) + ", " + std::to_string(grid.z) +
          ") block=(" + std::to_string(block.x) + ", " + std::to_string(block.y) + ", " + std::to_string(block.z) + ")";
  const std::lock_guard<std::mutex> lock(launches_mutex);
  launches.push_back(std::move(name));
}

namespace {

// Forces int64 indexing and a channel chunk count (0: the plan's) on the
// plans of every later host launch, so that tests reach every variant on
// small tensors.
void set_plan_overrides(bool force_index64, int64_t channel_chunks) {
  TORCH_CHECK(channel_chunks >= 0, "set_plan_overrides: channel_chunks must be >= 0, got ", channel_chunks);
  plan_overrides() = PlanOverrides{force_index64, channel_chunks};
}

// The kernels launched since the last call, in order (names with their
// template arguments).
std::vector<std::string> take_launches() {
  const std::lock_guard<std::mutex> lock(launches_mutex);
  std::vector<std::string> taken;
  taken.swap(launches);
  return taken;
}

constexpr int kProbeBound = 256;

// Every thread of the grid writes its linear index (block-major) where it is
// below out's size: the launcher's coverage, and its output poisoning, made
// visible.
__global__ void __launch_bounds__(kProbeBound) probe_kernel(int64_t* out, int64_t numel) {
  const int64_t block = (int64_t{blockIdx.z} * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int64_t thread = (int64_t{threadIdx.z} * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const int64_t id = block * (int64_t{blockDim.x} * blockDim.y * blockDim.z) + thread;
  if (id < numel) out[id] = id;
}

// A launch of probe_kernel (bound 256 threads) with the given grid and block
// into a poisoned int64 output of numel elements: the launcher's limits, tested.
at::Tensor probe_launch(at::IntArrayRef grid, at::IntArrayRef block, int64_t numel) {
  TORCH_CHECK(grid.size() == 3 && block.size() == 3, "cuda_host_probe_launch: grid and block have 3 elements");
  for (const int64_t v : {grid[0], grid[1], grid[2], block[0], block[1], block[2]}) {
    TORCH_CHECK(v >= 0 && v <= 0xFFFFFFFFll, "cuda_host_probe_launch: dimensions must fit unsigned int, got ", v);
  }
  at::Tensor out = at::empty({numel}, at::TensorOptions().dtype(at::kLong));
  const HostLauncher launcher;
  launcher.prepare_output(out);
  launcher.launch<kProbeBound>(probe_kernel,
                               dim3(static_cast<unsigned>(grid[0]), static_cast<unsigned>(grid[1]),
                                    static_cast<unsigned>(grid[2])),
                               dim3(static_cast<unsigned>(block[0]), static_cast<unsigned>(block[1]),
                                    static_cast<unsigned>(block[2])),
                               out.mutable_data_ptr<int64_t>(), numel);
  return out;
}

}  // namespace
}  // namespace alexnet_fast::cuda_host

TORCH_LIBRARY_FRAGMENT(alexnet_fast, m) {
  using namespace alexnet_fast::schemas;
  m.def(named("relu_lrn_forward_cuda_host", kReluLrnForward).c_str());
  m.def(named("relu_lrn_backward_cuda_host", kReluLrnBackward).c_str());
  m.def(named("max_pool2d_forward_cuda_host", kMaxPool2dForward).c_str());
  m.def(named("max_pool2d_backward_cuda_host", kMaxPool2dBackward).c_str());
  m.def(named("relu_lrn_max_pool2d_forward_cuda_host", kReluLrnMaxPool2dForward).c_str());
  m.def(named("relu_lrn_max_pool2d_backward_cuda_host", kReluLrnMaxPool2dBackward).c_str());
  m.def("cuda_host_set_plan_overrides(bool force_index64, int channel_chunks) -> ()",
        &alexnet_fast::cuda_host::set_plan_overrides);
  m.def("cuda_host_take_launches() -> str[]", &alexnet_fast::cuda_host::take_launches);
  m.def("cuda_host_probe_launch(int[3] grid, int[3] block, int numel) -> Tensor",
        &alexnet_fast::cuda_host::probe_launch);
}
