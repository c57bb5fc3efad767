// What the CUDA kernels of csrc/cuda/*_kernels.cuh need from CUDA, for the
// host compiler: they then compile unchanged as C++ and run on the CPU, one
// thread after another (host_launch.h), so that every machine, CI included,
// executes the exact CUDA source.
//
// Why this is exact: every kernel here is a one-thread-per-item (or
// grid-stride) kernel with disjoint writes: no __shared__, no __syncthreads,
// no warp shuffles, no atomics. Running its threads in any order computes what
// the GPU computes, provided the arithmetic rounds as the GPU's does:
//   - the _rn intrinsics are the correctly rounded IEEE operations, and the
//     host build uses -ffp-contract=off, so no multiply-add is fused that the
//     device would not fuse (the kernels write every fma they want, fma_rn);
//   - __fsqrt_rn / __dsqrt_rn are std::sqrt, correctly rounded on both;
//   - powf/pow, log2/exp2 come from the host math library, whose results can
//     differ from CUDA's libdevice in the last ulp: the kernels use them only
//     on the general-beta and wide-range paths, which the tests compare with
//     tolerances, never bitwise.
//
// What it checks: indexing, bounds (under the sanitizer build, every
// out-of-bounds read or write of the device code), launch configurations (the
// launcher refuses what a GPU refuses), every variant of every launch plan.
// What it cannot check: timing, coalescing, the memory model and
// synchronisation, register pressure and occupancy, and the device math
// library's last bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
// A kernel's launch bound travels with its launch (host_launch.h: launch<kBound>),
// where the host launcher can check it.
#define __launch_bounds__(...)

namespace alexnet_fast::cuda_host {

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The built-in variables of the thread that runs now (host_launch.h sets them).
struct ThreadIndex {
  dim3 block_index, thread_index, block_size, grid_size;
};
inline thread_local ThreadIndex current_thread;

}  // namespace alexnet_fast::cuda_host

using alexnet_fast::cuda_host::dim3;
#define blockIdx (::alexnet_fast::cuda_host::current_thread.block_index)
#define threadIdx (::alexnet_fast::cuda_host::current_thread.thread_index)
#define blockDim (::alexnet_fast::cuda_host::current_thread.block_size)
#define gridDim (::alexnet_fast::cuda_host::current_thread.grid_size)

// Vector types of the loads and stores.
struct uint2 {
  unsigned int x, y;
};
struct uint4 {
  unsigned int x, y, z, w;
};

// Correctly rounded arithmetic (IEEE; -ffp-contract=off keeps it unfused).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }

// The high 32 bits of the 64-bit product.
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((static_cast<uint64_t>(a) * b) >> 32);
}

// Read-only loads are plain loads on the host.
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

using std::max;
using std::min;
using std::pow;
inline float powf(float a, float b) { return std::pow(a, b); }
