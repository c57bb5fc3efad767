"""Triton kernels of alexnet-fast (installed as ``alexnet_fast.kernels``).

Each module holds one operator's kernels and the host functions that launch
them. The host functions take a ``launch`` argument: ``wrap_triton`` when
called from a ``torch.library.triton_op`` (so ``torch.compile`` sees the
kernel), the identity otherwise (eager, and the CPU interpreter).
"""
