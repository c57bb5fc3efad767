"""nn.Module wrappers of the alexnet_fast operators.

LRN conventions (the same layer is written four ways; mixing them up is a
recurring bug). With a_c the input and n the window size:

| source            | formula                                         | in PyTorch terms                          |
|-------------------|-------------------------------------------------|-------------------------------------------|
| AlexNet paper     | a / (k + alpha * sum_{n channels} a^2)^beta     | size=n, alpha=n*alpha, beta, k            |
|                   | (n=5, k=2, alpha=1e-4, beta=0.75; a sum)        | (size 5, alpha 5e-4, beta 0.75, k 2)      |
| PyTorch           | a / (k + alpha/n * sum_{n channels} a^2)^beta   | as is (window [c - n//2, c + (n-1)//2])   |
| Caffe, cuDNN      | a / (k + alpha/n * sum_{n channels} a^2)^beta   | as is (local_size / lrnN = n; odd n)      |
| TensorFlow        | a / (bias + alpha * sum_{c-r..c+r} a^2)^beta    | size=2r+1, alpha=(2r+1)*alpha, k=bias     |

The paper and TensorFlow sum the squares, PyTorch, Caffe and cuDNN average
them (alpha is divided by the window size). For even n PyTorch's window
reaches one channel further back than forward.
"""
from __future__ import annotations

from torch import Tensor, nn

from alexnet_fast._backends import check_backend_name
from alexnet_fast.ops.channel_groups import check_groups
from alexnet_fast.ops.max_pool2d import check_pool_window_arguments, max_pool2d
from alexnet_fast.ops.relu_lrn import check_lrn_arguments, relu_lrn
from alexnet_fast.ops.relu_lrn_max_pool2d import relu_lrn_max_pool2d


def _set_lrn_attributes(module, size, alpha, beta, k, groups, backend) -> None:
    """The LRN modules' shared attributes. Bad arguments fail here, with the
    functions' messages, not at the first forward."""
    check_lrn_arguments(size, alpha, beta, k)
    check_groups(groups)
    check_backend_name(backend)
    module.size, module.alpha, module.beta, module.k, module.groups, module.backend = size, alpha, beta, k, groups, backend


class ReLULRN(nn.Module):
    """``nn.LocalResponseNorm(size, alpha, beta, k)(torch.relu(x))`` in one fused op.

    Attributes ``size, alpha, beta, k`` follow PyTorch's convention (see the
    module docstring for the paper's, Caffe's, cuDNN's and TensorFlow's).
    ``groups``: each block of C / groups channels is normalised on its own
    (:func:`alexnet_fast.relu_lrn`).
    """

    def __init__(
        self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, backend: str = "auto",
        groups: int = 1,
    ):
        super().__init__()
        _set_lrn_attributes(self, size, alpha, beta, k, groups, backend)

    @classmethod
    def from_paper(
        cls, n: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, backend: str = "auto",
        groups: int = 1,
    ):
        """The AlexNet paper's ``b = a / (k + alpha * sum a^2)^beta`` over n channels:
        it sums where PyTorch averages, so PyTorch's alpha is ``n * alpha``."""
        return cls(n, alpha * n, beta, k, backend=backend, groups=groups)

    @classmethod
    def from_tensorflow(
        cls, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5, backend: str = "auto",
        groups: int = 1,
    ):
        """``tf.nn.local_response_normalization(depth_radius, bias, alpha, beta)``:
        a window of ``2 * depth_radius + 1`` channels, summed."""
        size = 2 * depth_radius + 1
        return cls(size, alpha * size, beta, bias, backend=backend, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        return relu_lrn(x, self.size, self.alpha, self.beta, self.k, groups=self.groups, backend=self.backend)

    def extra_repr(self) -> str:
        return (
            f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, groups={self.groups}, "
            f"backend={self.backend!r}"
        )


class MaxPool2d(nn.Module):
    """``nn.MaxPool2d`` with the same arguments and results, on the fast kernels."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                 return_indices: bool = False, backend: str = "auto"):
        super().__init__()
        check_pool_window_arguments(kernel_size, stride, padding, dilation, ceil_mode)
        check_backend_name(backend)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.return_indices = return_indices
        self.backend = backend

    def forward(self, x: Tensor):
        return max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, backend={self.backend!r}"
        )


class ReLULRNMaxPool2d(nn.Module):
    """``F.max_pool2d(nn.LocalResponseNorm(size, alpha, beta, k)(torch.relu(x)),
    kernel_size, stride, padding, ceil_mode=ceil_mode)`` in one fused op
    (AlexNet's ReLU -> LRN -> overlapping pool block; dilation is 1).

    Attributes ``size, alpha, beta, k, groups`` are :class:`ReLULRN`'s; the
    pooling attributes follow ``nn.MaxPool2d``.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, kernel_size=3, stride=2,
                 padding=0, ceil_mode: bool = False, backend: str = "auto", groups: int = 1):
        super().__init__()
        _set_lrn_attributes(self, size, alpha, beta, k, groups, backend)
        check_pool_window_arguments(kernel_size, stride, padding, 1, ceil_mode)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode

    @classmethod
    def from_paper(cls, n: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, kernel_size=3, stride=2,
                   padding=0, ceil_mode: bool = False, backend: str = "auto", groups: int = 1):
        """The AlexNet paper's ``b = a / (k + alpha * sum a^2)^beta`` over n channels
        followed by its overlapping 3x3, stride-2 pool: PyTorch's alpha is ``n * alpha``."""
        return cls(n, alpha * n, beta, k, kernel_size, stride, padding, ceil_mode, backend=backend, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        return relu_lrn_max_pool2d(
            x, self.size, self.alpha, self.beta, self.k, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            groups=self.groups, backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, ceil_mode={self.ceil_mode}, groups={self.groups}, "
            f"backend={self.backend!r}"
        )
