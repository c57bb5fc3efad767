// The instruction set the CPU kernels run their hot loops with.
//
// The extension is built for the x86-64 baseline (no -march), so that one
// wheel runs everywhere. The hot loops are compiled once more per wider
// instruction set under `#pragma GCC target` (see max_pool2d_kernel.cpp and
// lrn_rows.h) and one variant is picked at run time: the best the CPU (and
// the OS, for the AVX register state) supports, or a lower one asked for by
// ALEXNET_FAST_CPU_ISA=base|avx2|avx512 (for testing the variants against
// each other; a higher one than the CPU has is ignored). Read once.
#pragma once

#include <cstdlib>
#include <string>

// Multi-target builds: x86-64 GCC on Linux (the ISA check needs
// __builtin_cpu_supports; the target pragmas and vector extensions need GCC).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AF_MULTI_TARGET 1
#else
#define AF_MULTI_TARGET 0
#endif

namespace alexnet_fast {

enum class CpuIsa { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

inline CpuIsa detect_cpu_isa() {
  CpuIsa best = CpuIsa::kBase;
#if AF_MULTI_TARGET
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CpuIsa::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    best = CpuIsa::kAvx512;
#endif
  if (const char* env = std::getenv("ALEXNET_FAST_CPU_ISA")) {
    const std::string s(env);
    CpuIsa want = best;
    if (s == "base") want = CpuIsa::kBase;
    else if (s == "avx2") want = CpuIsa::kAvx2;
    else if (s == "avx512") want = CpuIsa::kAvx512;
    if (static_cast<int>(want) < static_cast<int>(best)) best = want;
  }
  return best;
}

// One value per process (an inline function's static is shared by every
// translation unit).
inline CpuIsa cpu_isa() {
  static const CpuIsa value = detect_cpu_isa();
  return value;
}

}  // namespace alexnet_fast
