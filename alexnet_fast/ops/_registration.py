"""One way to register an operator pair (forward, backward) on every backend.

The schemas are declared once, in C++ (csrc/alexnet_fast.cpp); the Triton
operators reuse them. For an op ``name`` this registers:

  alexnet_fast::name_forward / _backward          C++ (CPU and CUDA kernels)
  alexnet_fast::name_forward_triton / _backward_triton
        torch.library.triton_op: on CUDA tensors; torch.compile traces into
        the host code and sees the Triton kernels (wrap_triton)
  alexnet_fast::name_forward_triton_interpreted / _backward_triton_interpreted
        an opaque custom_op for CPU tensors under TRITON_INTERPRET=1, so that
        fake-tensor tracing never runs the interpreter

plus the fake kernels of all six, the same autograd formula for the three
forward ops (each calling its own backend's backward op), and the same double
backward for the three backward ops: the derivative of the backward pass,
written with PyTorch ops (the reference semantics), so that create_graph=True,
gradgradcheck and torch.func transforms of any order see exact derivatives.
"""
from __future__ import annotations

import inspect
from typing import Callable, NamedTuple

import torch
from torch.library import custom_op, register_autograd, register_fake, triton_op, wrap_triton


class OpPair(NamedTuple):
    forward: Callable
    backward: Callable


def _run_directly(kernel):
    return kernel


_PYTHON_TYPES = {"Tensor": torch.Tensor, "int": int, "float": float, "bool": bool, "List[int]": list[int]}


def _signature(qualified_name: str) -> inspect.Signature:
    """The Python signature of a C++-declared op, for torch.library's schema
    inference: the Triton ops get exactly the C++ op's schema."""
    namespace, name = qualified_name.split("::")
    schema = getattr(getattr(torch.ops, namespace), name).default._schema
    parameters = [
        inspect.Parameter(
            arg.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=_PYTHON_TYPES[str(arg.type)],
            default=arg.default_value if arg.has_default_value() else inspect.Parameter.empty,
        )
        for arg in schema.arguments
    ]
    returns = [_PYTHON_TYPES[str(ret.type)] for ret in schema.returns]
    return inspect.Signature(parameters, return_annotation=returns[0] if len(returns) == 1 else tuple[tuple(returns)])


def _triton_ops(name: str, host: Callable, fake: Callable) -> tuple[Callable, Callable]:
    signature = _signature(f"alexnet_fast::{name}")

    def on_cuda(*args):
        return host(*args, launch=wrap_triton)

    def interpreted(*args):
        return host(*args, launch=_run_directly)

    on_cuda.__signature__ = interpreted.__signature__ = signature
    gpu_op = triton_op(f"alexnet_fast::{name}_triton", on_cuda, mutates_args=())
    cpu_op = custom_op(f"alexnet_fast::{name}_triton_interpreted", interpreted, mutates_args=(), device_types="cpu")
    cpu_op.register_fake(fake)
    return gpu_op, cpu_op


def register(
    name: str,
    *,
    triton_forward: Callable,
    triton_backward: Callable,
    fake_forward: Callable,
    fake_backward: Callable,
    setup_context: Callable,
    backward: Callable,
    setup_double_backward: Callable,
    double_backward: Callable,
) -> dict[str, OpPair]:
    """Registers ``name``'s ops (see the module docstring).

    triton_forward/backward: host functions taking the op's arguments and a
    ``launch`` keyword. backward(ctx, backward_op, *grads) returns the input
    gradients given the backend's backward op. setup_double_backward and
    double_backward are the backward op's own setup_context and backward.
    """
    forward_name, backward_name = f"{name}_forward", f"{name}_backward"
    namespace = torch.ops.alexnet_fast
    register_fake(f"alexnet_fast::{forward_name}", fake_forward)
    register_fake(f"alexnet_fast::{backward_name}", fake_backward)
    pairs = {"cpp": OpPair(getattr(namespace, forward_name).default, getattr(namespace, backward_name).default)}
    forward_gpu, forward_cpu = _triton_ops(forward_name, triton_forward, fake_forward)
    backward_gpu, backward_cpu = _triton_ops(backward_name, triton_backward, fake_backward)
    pairs["triton"] = OpPair(forward_gpu, backward_gpu)
    pairs["triton_interpreted"] = OpPair(forward_cpu, backward_cpu)
    for pair in pairs.values():
        register_autograd(
            pair.forward,
            lambda ctx, *grads, _op=pair.backward: backward(ctx, _op, *grads),
            setup_context=setup_context,
        )
        register_autograd(pair.backward, double_backward, setup_context=setup_double_backward)
    return pairs


def forward_op(pairs: dict[str, OpPair], backend: str, device: torch.device) -> Callable:
    """The forward op that runs a resolved (non-reference) backend on device."""
    if backend in ("cpu", "cuda"):
        return pairs["cpp"].forward
    return pairs["triton_interpreted" if device.type == "cpu" else "triton"].forward
