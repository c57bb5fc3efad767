// The max-pool rules every C++ backend applies (CPU kernels, CUDA glue and
// its host execution): PyTorch's argument checks and output size, as
// F.max_pool2d applies them. The Python functions apply the same rules
// (alexnet_fast/ops/max_pool2d.py, kernels/layout.py); tests/test_pool_arguments.py
// checks that every backend accepts and refuses what F.max_pool2d does.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>
#include <optional>

namespace alexnet_fast {

// Kernel, stride, padding and dilation along (h, w).
struct PoolWindow {
  int64_t kH, kW, sH, sW, pH, pW, dH = 1, dW = 1;

  bool is_3x3s2() const { return kH == 3 && kW == 3 && sH == 2 && sW == 2 && dH == 1 && dW == 1; }
  int64_t positions() const { return kH * kW; }
  // The compact argmax: the window position i * kW + j, uint8 while it fits.
  at::ScalarType position_dtype() const { return positions() > 256 ? at::kInt : at::kByte; }
};

// Checks the lists as PyTorch does: 2 elements each; kernel, stride and
// dilation >= 1; 0 <= padding <= kernel / 2 (PyTorch's rule: the dilated size
// does not count); every value a C int. `dilation` absent means 1 (an op
// without the argument).
inline PoolWindow check_pool_window(const char* op, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                    at::IntArrayRef padding,
                                    std::optional<at::IntArrayRef> dilation = std::nullopt) {
  TORCH_CHECK(kernel_size.size() == 2 && stride.size() == 2 && padding.size() == 2 &&
                  (!dilation || dilation->size() == 2),
              op, ": kernel_size, stride, padding and dilation must have 2 elements, got kernel_size=",
              kernel_size, ", stride=", stride, ", padding=", padding);
  PoolWindow w{kernel_size[0], kernel_size[1], stride[0], stride[1], padding[0], padding[1]};
  if (dilation) {
    w.dH = (*dilation)[0];
    w.dW = (*dilation)[1];
  }
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  auto in_range = [&](int64_t v, int64_t lo) { return v >= lo && v <= kIntMax; };
  TORCH_CHECK(in_range(w.kH, 1) && in_range(w.kW, 1), op, ": kernel_size must be in [1, 2^31), got ",
              kernel_size);
  TORCH_CHECK(in_range(w.sH, 1) && in_range(w.sW, 1), op, ": stride must be in [1, 2^31), got ", stride);
  TORCH_CHECK(in_range(w.dH, 1) && in_range(w.dW, 1), op, ": dilation must be in [1, 2^31), got dilation=(",
              w.dH, ", ", w.dW, ")");
  TORCH_CHECK(w.pH >= 0 && w.pW >= 0, op, ": padding must be non-negative, got ", padding);
  TORCH_CHECK(w.pH <= w.kH / 2 && w.pW <= w.kW / 2, op,
              ": padding must be at most half of kernel_size, got padding=", padding,
              ", kernel_size=", kernel_size);
  TORCH_CHECK(w.kH <= kIntMax / w.kW, op, ": kernel_size[0] * kernel_size[1] must fit in int32, got ",
              kernel_size);
  return w;
}

// PyTorch's pooling_output_shape: floor (or with ceil_mode ceil) of
// (in + 2 pad - dilation (k - 1) - 1) / stride, plus one; with ceil_mode a
// last window starting at or past in + pad (wholly in the right padding) is
// dropped.
inline int64_t pooling_output_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dilation,
                                   bool ceil_mode) {
  const int64_t num = in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t q = num / stride;
  if (num % stride != 0 && num < 0) --q;  // floor, as PyTorch's div_rtn
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// (OH, OW) of an (H, W) input, checked to be at least 1 x 1.
inline std::pair<int64_t, int64_t> pooled_size(const char* op, int64_t H, int64_t W, const PoolWindow& w,
                                               bool ceil_mode) {
  const int64_t OH = pooling_output_size(H, w.kH, w.pH, w.sH, w.dH, ceil_mode);
  const int64_t OW = pooling_output_size(W, w.kW, w.pW, w.sW, w.dW, ceil_mode);
  TORCH_CHECK(OH >= 1 && OW >= 1, op, ": output size (", OH, ", ", OW, ") is too small for input (H, W) = (", H,
              ", ", W, ") with kernel_size=(", w.kH, ", ", w.kW, "), stride=(", w.sH, ", ", w.sW, "), padding=(",
              w.pH, ", ", w.pW, "), dilation=(", w.dH, ", ", w.dW, "), ceil_mode=", ceil_mode);
  return {OH, OW};
}

// The backward gets no ceil_mode: a pooled (OH, OW) of an (H, W) input is
// valid when each is the floor or the ceil size.
inline void check_pooled_size(const char* op, int64_t H, int64_t W, int64_t OH, int64_t OW, const PoolWindow& w) {
  auto ok = [&](int64_t out, int64_t in, int64_t k, int64_t p, int64_t s, int64_t d) {
    return out == pooling_output_size(in, k, p, s, d, false) || out == pooling_output_size(in, k, p, s, d, true);
  };
  TORCH_CHECK(H >= 1 && W >= 1, op, ": the input size must be >= 1, got (", H, ", ", W, ")");
  TORCH_CHECK(OH >= 1 && OW >= 1 && ok(OH, H, w.kH, w.pH, w.sH, w.dH) && ok(OW, W, w.kW, w.pW, w.sW, w.dW), op,
              ": the pooled size (", OH, ", ", OW, ") does not match the input (H, W) = (", H, ", ", W,
              ") with kernel_size=(", w.kH, ", ", w.kW, "), stride=(", w.sH, ", ", w.sW, "), padding=(", w.pH,
              ", ", w.pW, "), dilation=(", w.dH, ", ", w.dW, ")");
}

// The argmax a backward gets: window positions (position_dtype) or PyTorch's
// int64 flat indices. Returns true for flat indices.
inline bool check_argmax_dtype(const char* op, const at::Tensor& argmax, const PoolWindow& w) {
  const at::ScalarType dtype = argmax.scalar_type();
  TORCH_CHECK(dtype == w.position_dtype() || dtype == at::kLong, op, ": argmax must be ", w.position_dtype(),
              " (window positions) or int64 (flat indices) for kernel_size=(", w.kH, ", ", w.kW, "), got ",
              dtype);
  return dtype == at::kLong;
}

}  // namespace alexnet_fast
