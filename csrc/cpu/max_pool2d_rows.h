// max_pool2d's NCHW 3x3 / stride-2 forward (max_pool2d_simd.h, on the CPU's
// instruction set), for the other CPU kernels: relu_lrn_max_pool2d pools its
// bands of LRN values with it, so both ops share one implementation of
// AlexNet's pooling and its fold (max_pool2d_kernel.cpp's header comment).
#pragma once

#include <cstdint>
#include <vector>

namespace alexnet_fast {

// One thread's scratch; max_pool2d_k3s2_rows sizes it.
struct MaxPoolK3s2Scratch {
  std::vector<float> hv;
  std::vector<int32_t> hp, pt;
};

// Output rows [oh_begin, oh_end) of one float32 H x W plane pooled with a
// 3x3 window, stride 2, dilation 1 and padding pH, pW <= 1 into OH x OW
// (ceil_mode is in OH, OW). `rows` holds the plane's input rows from
// max(0, 2 oh_begin - pH) on, W values each, as far as those windows reach;
// out and argmax point at the plane's outputs (row oh at + oh * OW); argmax
// (the window positions i * 3 + j, as uint8) may be null.
void max_pool2d_k3s2_rows(const float* rows, float* out, uint8_t* argmax, int64_t H, int64_t W, int64_t OH,
                          int64_t OW, int64_t pH, int64_t pW, int64_t oh_begin, int64_t oh_end,
                          MaxPoolK3s2Scratch& scratch);

}  // namespace alexnet_fast
