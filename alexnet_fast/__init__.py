"""alexnet-fast: AlexNet's fused ReLU + LRN and overlapping max-pool as fast
PyTorch operators (C++, CUDA and Triton kernels behind torch.library)."""
from alexnet_fast._backends import BACKENDS, available_backends, release_cached_memory
from alexnet_fast.ops.max_pool2d import max_pool2d
from alexnet_fast.ops.relu_lrn import local_response_norm, relu_lrn
from alexnet_fast.ops.relu_lrn_max_pool2d import relu_lrn_max_pool2d
from alexnet_fast import nn  # noqa: E402  (after the ops it wraps)
from alexnet_fast import models  # noqa: E402  (after nn, which it uses)
from alexnet_fast.onnx_export import export_onnx  # noqa: E402  (needs onnx and onnxscript when called)

__version__ = "0.1.0"
__all__ = ["BACKENDS", "available_backends", "export_onnx", "local_response_norm", "max_pool2d", "nn",
           "release_cached_memory", "relu_lrn", "relu_lrn_max_pool2d"]
