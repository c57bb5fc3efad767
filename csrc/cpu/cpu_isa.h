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

#include <atomic>
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

inline const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kAvx2:
      return "avx2";
    default:
      return "base";
  }
}

// The best variant this CPU and build can run, before the cap: avx2 needs
// AVX2 and FMA, avx512 AVX-512 F, BW, DQ and VL (GCC's check includes the
// OS's support for the register state).
inline CpuIsa supported_cpu_isa() {
  CpuIsa best = CpuIsa::kBase;
#if AF_MULTI_TARGET
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CpuIsa::kAvx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    best = CpuIsa::kAvx512;
#endif
  return best;
}

inline CpuIsa detect_cpu_isa() {
  CpuIsa best = supported_cpu_isa();
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

// Which variant each CPU kernel ran last, for the tests
// (alexnet_fast._C._cpu_variants_used()): the entry functions record the
// variant they dispatch to, once per call. A kernel with parts of different
// widths records each part (the fused forward: its LRN rows and its pooling).
enum class CpuKernel {
  kReluLrnForward,
  kReluLrnBackward,
  kMaxPool2dForward,
  kMaxPool2dBackward,
  kReluLrnMaxPool2dForward,
  kReluLrnMaxPool2dForwardPooling,
  kReluLrnMaxPool2dBackward,
  kCount
};

inline constexpr const char* kCpuKernelNames[] = {
    "relu_lrn_forward",           "relu_lrn_backward",
    "max_pool2d_forward",         "max_pool2d_backward",
    "relu_lrn_max_pool2d_forward", "relu_lrn_max_pool2d_forward_pooling",
    "relu_lrn_max_pool2d_backward"};
static_assert(sizeof(kCpuKernelNames) / sizeof(kCpuKernelNames[0]) == static_cast<size_t>(CpuKernel::kCount));

// 0: not run yet; else 1 + the CpuIsa.
inline std::atomic<int>& cpu_variant_slot(CpuKernel kernel) {
  static std::atomic<int> slots[static_cast<int>(CpuKernel::kCount)];
  return slots[static_cast<int>(kernel)];
}

inline void record_cpu_variant(CpuKernel kernel, CpuIsa isa) {
  cpu_variant_slot(kernel).store(1 + static_cast<int>(isa), std::memory_order_relaxed);
}

// The name of the variant `kernel` ran last, or nullptr before its first call.
inline const char* last_cpu_variant(CpuKernel kernel) {
  const int v = cpu_variant_slot(kernel).load(std::memory_order_relaxed);
  return v == 0 ? nullptr : cpu_isa_name(static_cast<CpuIsa>(v - 1));
}

}  // namespace alexnet_fast
