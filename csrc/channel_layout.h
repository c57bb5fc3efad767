// Layout shared by the C++ kernels: a tensor of shape (N, C, *) is seen as
// (N, C, S) with S the product of the trailing (spatial) sizes. Kernels handle
// the two dense layouts without a copy:
//   channels-first (NCHW, contiguous):        stride_c = S, stride_s = 1
//   channels-last  (NHWC, channels_last(_3d)): stride_c = 1, stride_s = C
// Any other strides (a sliced or permuted view) are copied to contiguous once.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

namespace alexnet_fast {

struct ChannelView {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t spatial = 0;  // product of the sizes after the channel dim
  int64_t stride_batch = 0;
  int64_t stride_channel = 0;
  int64_t stride_spatial = 0;
  bool channels_last() const { return stride_channel == 1 && channels > 1; }
};

// True when `t`'s spatial dims (2..) collapse into one dim of stride `inner`
// and the batch dim is dense over (C, S).
inline bool spatial_collapses(const at::Tensor& t, int64_t inner) {
  int64_t expected = inner;
  for (int64_t d = t.dim() - 1; d >= 2; --d) {
    if (t.size(d) != 1 && t.stride(d) != expected) return false;
    expected *= t.size(d);
  }
  return true;
}

// Returns `x` when it is channels-first or channels-last dense, otherwise a
// contiguous copy, and fills `view`. Output tensors made with
// at::empty_like(result) share the layout (empty_like keeps dense strides).
inline at::Tensor as_channel_view(const at::Tensor& x, ChannelView& view) {
  TORCH_INTERNAL_ASSERT(x.dim() >= 3);
  view.batch = x.size(0);
  view.channels = x.size(1);
  view.spatial = 1;
  for (int64_t d = 2; d < x.dim(); ++d) view.spatial *= x.size(d);
  const int64_t C = view.channels, S = view.spatial;
  auto batch_ok = [&](const at::Tensor& t) {
    return t.size(0) == 1 || t.stride(0) == C * S;
  };
  if (x.is_contiguous()) {
    view.stride_batch = C * S;
    view.stride_channel = S;
    view.stride_spatial = 1;
    return x;
  }
  if ((C == 1 || x.stride(1) == 1) && spatial_collapses(x, C) && batch_ok(x)) {
    view.stride_batch = C * S;
    view.stride_channel = 1;
    view.stride_spatial = C;
    return x;
  }
  return as_channel_view(x.contiguous(), view);
}

// `t` (e.g. an incoming gradient) laid out exactly like `like`, which
// as_channel_view returned: `t` itself when the strides already match.
inline at::Tensor same_layout_as(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) return t;
  at::Tensor out = at::empty_like(like);
  out.copy_(t);
  return out;
}

}  // namespace alexnet_fast
