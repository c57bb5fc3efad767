"""One way to register an operator pair (forward, backward) on every backend.

An op is described once (OpDescription: its fake kernels, autograd, double
backward and Triton host functions); ``register`` turns the description into one
(forward, backward) pair of torch.library operators per compiled backend of the
backend table (alexnet_fast/_backends.py), keyed by the op suffix there:

  alexnet_fast::name_forward / _backward          ""  C++ (CPU and CUDA kernels,
        schemas declared once in csrc/alexnet_fast.cpp)
  alexnet_fast::name_forward_cuda_host / ...       "_cuda_host": the CUDA kernels
        run on the CPU (alexnet_fast._cuda_host, when built)
  alexnet_fast::name_forward_triton / ...          "_triton": a torch.library
        triton_op on CUDA tensors; torch.compile traces into the host code and sees
        the Triton kernels (wrap_triton)
  alexnet_fast::name_forward_triton_interpreted    "_triton_interpreted": an opaque
        custom_op for CPU tensors under TRITON_INTERPRET=1, so that fake-tensor
        tracing never runs the interpreter

with the same fake kernels, the same autograd formula for the forward ops (each
calling its own backend's backward op), and the same double backward for the
backward ops: the derivative of the backward pass, written with PyTorch ops (the
reference semantics), so that create_graph=True and gradgradcheck see exact
derivatives. The Triton ops reuse the C++ schemas.

Adding an op is one OpDescription plus its kernels (README, "Adding an op").
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, NamedTuple

import torch
from torch.library import custom_op, register_autograd, register_fake, triton_op, wrap_triton

from alexnet_fast._backends import BACKEND_BY_NAME


class OpPair(NamedTuple):
    forward: Callable
    backward: Callable


@dataclasses.dataclass(frozen=True)
class OpDescription:
    """Everything the registration needs of an op named ``name`` (its C++ schemas are
    ``name_forward`` and ``name_backward``).

    triton_forward/backward: host functions taking the op's arguments and a
    ``launch`` keyword. backward(ctx, backward_op, *grads) returns the input
    gradients given the backend's backward op. setup_double_backward and
    double_backward are the backward op's own setup_context and backward.
    """

    name: str
    fake_forward: Callable
    fake_backward: Callable
    setup_context: Callable
    backward: Callable
    setup_double_backward: Callable
    double_backward: Callable
    triton_forward: Callable
    triton_backward: Callable


def _launch_directly(kernel):
    """The interpreter's launch: the kernel itself (wrap_triton's counterpart)."""
    return kernel


_PYTHON_TYPES = {
    "Tensor": torch.Tensor, "Tensor?": torch.Tensor | None, "int": int, "int?": int | None, "float": float,
    "float?": float | None, "bool": bool, "List[int]": list[int], "List[float]": list[float],
    "SymInt": int, "List[SymInt]": list[int],
}


def _signature(qualified_name: str) -> inspect.Signature:
    """The Python signature of a C++-declared op, for torch.library's schema
    inference: the Triton ops get exactly the C++ op's schema."""
    namespace, name = qualified_name.split("::")
    schema = getattr(getattr(torch.ops, namespace), name).default._schema

    def python_type(type_) -> type:
        text = str(type_)
        if text not in _PYTHON_TYPES:
            raise TypeError(f"{qualified_name}: argument type {text} has no Python type in _PYTHON_TYPES")
        return _PYTHON_TYPES[text]

    parameters = [
        inspect.Parameter(
            arg.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=python_type(arg.type),
            default=arg.default_value if arg.has_default_value() else inspect.Parameter.empty,
        )
        for arg in schema.arguments
    ]
    returns = [python_type(ret.type) for ret in schema.returns]
    return inspect.Signature(parameters, return_annotation=returns[0] if len(returns) == 1 else tuple[tuple(returns)])


def _triton_ops(name: str, host: Callable, fake: Callable) -> tuple[Callable, Callable]:
    signature = _signature(f"alexnet_fast::{name}")

    def on_cuda(*args):
        return host(*args, launch=wrap_triton)

    def interpreted(*args):
        return host(*args, launch=_launch_directly)

    on_cuda.__signature__ = interpreted.__signature__ = signature
    gpu_op = triton_op(f"alexnet_fast::{name}_triton", on_cuda, mutates_args=())
    cpu_op = custom_op(f"alexnet_fast::{name}_triton_interpreted", interpreted, mutates_args=(), device_types="cpu")
    cpu_op.register_fake(fake)
    return gpu_op, cpu_op


def _compiled_pair(name: str, suffix: str) -> OpPair | None:
    namespace = torch.ops.alexnet_fast
    forward, backward = f"{name}_forward{suffix}", f"{name}_backward{suffix}"
    if not (hasattr(namespace, forward) and hasattr(namespace, backward)):
        return None  # a library that is not built (alexnet_fast._cuda_host)
    return OpPair(getattr(namespace, forward).default, getattr(namespace, backward).default)


def register(op: OpDescription) -> dict[str, OpPair]:
    """Registers the op on every backend (module docstring); returns its pairs by op suffix."""
    pairs: dict[str, OpPair] = {}
    for suffix in ("", "_cuda_host"):  # C++ schemas: fakes from Python
        pair = _compiled_pair(op.name, suffix)
        if pair is not None:
            register_fake(pair.forward, op.fake_forward)
            register_fake(pair.backward, op.fake_backward)
            pairs[suffix] = pair
    forward_gpu, forward_cpu = _triton_ops(f"{op.name}_forward", op.triton_forward, op.fake_forward)
    backward_gpu, backward_cpu = _triton_ops(f"{op.name}_backward", op.triton_backward, op.fake_backward)
    pairs["_triton"] = OpPair(forward_gpu, backward_gpu)
    pairs["_triton_interpreted"] = OpPair(forward_cpu, backward_cpu)
    for pair in pairs.values():
        register_autograd(
            pair.forward,
            lambda ctx, *grads, _op=pair.backward: op.backward(ctx, _op, *grads),
            setup_context=op.setup_context,
        )
        register_autograd(pair.backward, op.double_backward, setup_context=op.setup_double_backward)
    return pairs


def backend_ops(pairs: dict[str, OpPair], backend: str, device: torch.device) -> OpPair:
    """The (forward, backward) ops that a resolved, non-reference backend runs on device."""
    return pairs[BACKEND_BY_NAME[backend].op_suffix[device.type]]


def forward_op(pairs: dict[str, OpPair], backend: str, device: torch.device) -> Callable:
    return backend_ops(pairs, backend, device).forward
