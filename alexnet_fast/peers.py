"""The same ops in the frameworks people would otherwise use, timed beside
ours by `alexnet-fast bench --peers` and by benches/: ONNX Runtime, OpenVINO,
TensorFlow and JAX, each where it is installed (``pip install alexnet-fast[peers]``).

:func:`build` makes one op (relu_lrn, max_pool2d, relu_lrn_max_pool2d) in one
framework from the arguments our ops take. Every framework computes the
PyTorch convention of the README's table,

    b_c = a_c / (k + alpha / n * sum_{c' = c - n//2}^{c + (n-1)//2} a_{c'}^2)^beta,  a = relu(x),

and a max-pool without padding that drops a partial last window (floor mode):

- ONNX's LRN (ONNX Runtime) and OpenVINO's LRN (axes [1]) scale alpha by 1/n
  as PyTorch does. ONNX sums over [c - floor((n-1)/2), c + ceil((n-1)/2)],
  PyTorch's window mirrored for an even n (ONNX Runtime's kernel refuses an
  even n); OpenVINO's even window is neither. So an even n is refused.
- TensorFlow's local_response_normalization sums over [c - r, c + r] and does
  not divide alpha: n = 2r + 1 (odd only) and alpha_tf = alpha / n. Its CPU
  kernels take NHWC tensors, so its input is converted to NHWC.
- JAX: the formula above in jax.numpy (a sum over a window of n channels
  padded by n//2 before and (n-1)//2 after: any n), under jax.jit.

Inputs are converted to each framework's arrays (and layout) once, outside
the timed calls. Forward+backward (the input's gradient for a given output
gradient) exists where the framework has autograd: TensorFlow (GradientTape
in a tf.function) and JAX (jax.vjp under jax.jit). Each framework gets the
thread count of torch.get_num_threads(), intra- and inter-op, where it can.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from typing import Callable

import numpy as np
import torch

PEERS = ("onnxruntime", "openvino", "tensorflow", "jax")
OPS = ("relu_lrn", "max_pool2d", "relu_lrn_max_pool2d")
_MODULES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino",), "tensorflow": ("tensorflow",),
            "jax": ("jax",)}
INSTALL = {"onnxruntime": "onnxruntime onnx", "openvino": "openvino", "tensorflow": "tensorflow-cpu", "jax": "jax"}
WITH_AUTOGRAD = ("tensorflow", "jax")  # the others are inference engines


def modes(peer: str) -> tuple[str, ...]:
    """What a peer is timed in: forward, and forward_backward where it has
    autograd (never backward alone: the frameworks do not keep a forward's
    graph for repeated backward passes alike)."""
    return ("forward", "forward_backward") if peer in WITH_AUTOGRAD else ("forward",)


def installed() -> list[str]:
    """The peers whose packages are importable here."""
    return [peer for peer in PEERS if all(importlib.util.find_spec(m) for m in _MODULES[peer])]


def missing() -> dict[str, str]:
    """The peers that are not installed, and the pip packages that install them."""
    return {peer: INSTALL[peer] for peer in PEERS if peer not in installed()}


@dataclasses.dataclass
class PeerOp:
    """One op in one framework. ``forward(x)`` and, where the framework has
    autograd, ``forward_backward(x, grad)`` (the input's gradient) take and
    return the framework's arrays: ``to_native`` makes them from a torch
    tensor, ``to_torch`` turns a result back (both outside timed calls);
    ``wait`` blocks until a result is computed. ``threads``: how the thread
    count was set, for the report."""

    peer: str
    op: str
    forward: Callable
    forward_backward: Callable | None
    to_native: Callable[[torch.Tensor], object]
    to_torch: Callable[[object], torch.Tensor]
    wait: Callable[[object], object]
    threads: str


@dataclasses.dataclass(frozen=True)
class _Params:
    """The arguments of our ops (PyTorch's LRN convention)."""

    op: str
    size: int
    alpha: float
    beta: float
    k: float
    kernel_size: int
    stride: int

    @property
    def lrn(self) -> bool:
        return self.op in ("relu_lrn", "relu_lrn_max_pool2d")

    @property
    def pool(self) -> bool:
        return self.op in ("max_pool2d", "relu_lrn_max_pool2d")


def build(peer: str, op: str, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
          kernel_size: int = 3, stride: int | None = None, threads: int | None = None) -> PeerOp:
    """``op`` in ``peer`` with our ops' arguments (LRN: PyTorch's convention),
    running on ``threads`` threads (default torch.get_num_threads())."""
    if peer not in PEERS:
        raise ValueError(f"peer must be one of {', '.join(PEERS)}; got {peer!r}")
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}; got {op!r}")
    # The arguments first: a bad one is named whether or not the peer is installed.
    if size < 1 or kernel_size < 1 or (stride is not None and stride < 1):
        raise ValueError(f"size, kernel_size and stride must be >= 1; got {size}, {kernel_size}, {stride}")
    params = _Params(op, size, alpha, beta, k, kernel_size, stride or kernel_size)
    if params.lrn and size % 2 == 0 and peer != "jax":
        raise ValueError(f"size={size}: {peer}'s LRN window equals PyTorch's only for an odd size; "
                         "use an odd size, or the jax peer")
    absent = [m for m in _MODULES[peer] if importlib.util.find_spec(m) is None]
    if absent:
        raise ImportError(f"peer {peer!r} needs {', '.join(absent)}: pip install {INSTALL[peer]}")
    threads = threads or torch.get_num_threads()
    _limit_xla_threads(threads)  # before any peer starts: TensorFlow's keras imports jax
    return _BUILDERS[peer](params, threads)


# --- ONNX Runtime --------------------------------------------------------------------
def _onnx_model(params: _Params) -> bytes:
    from onnx import TensorProto, helper

    nodes, last = [], "x"
    if params.lrn:
        nodes += [helper.make_node("Relu", ["x"], ["a"]),
                  helper.make_node("LRN", ["a"], ["b"], size=params.size, alpha=params.alpha, beta=params.beta,
                                   bias=params.k)]
        last = "b"
    if params.pool:
        nodes.append(helper.make_node("MaxPool", [last], ["p"], kernel_shape=[params.kernel_size] * 2,
                                      strides=[params.stride] * 2))
        last = "p"
    dims = ["N", "C", "H", "W"]
    graph = helper.make_graph(nodes, params.op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # read by every ONNX Runtime since 1.10
    return model.SerializeToString()


def _onnxruntime(params: _Params, threads: int) -> PeerOp:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    session = ort.InferenceSession(_onnx_model(params), options, providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0].name
    return PeerOp("onnxruntime", params.op, lambda x: session.run([output], {"x": x})[0], None, _to_numpy,
                  torch.from_numpy, _no_wait, f"{threads} intra-op, {threads} inter-op")


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().float().numpy())


def _no_wait(result):
    return result


# --- OpenVINO ------------------------------------------------------------------------
def _openvino(params: _Params, threads: int) -> PeerOp:
    import openvino as ov
    import openvino.opset13 as ops

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    compiled: dict[tuple, object] = {}  # one static-shape model per input shape, compiled at its first call

    def request_for(shape: tuple):
        if shape not in compiled:
            x = ops.parameter(list(shape), ov.Type.f32, name="x")
            node = x
            if params.lrn:
                node = ops.lrn(ops.relu(node), ops.constant(np.array([1], dtype=np.int64)), params.alpha,
                               params.beta, params.k, params.size)
            if params.pool:
                node = ops.max_pool(node, [params.stride] * 2, [1, 1], [0, 0], [0, 0], [params.kernel_size] * 2,
                                    rounding_type="floor")
            model = ov.Model([node.output(0)], [x], params.op)
            compiled[shape] = core.compile_model(model, "CPU", config).create_infer_request()
        return compiled[shape]

    def forward(x: np.ndarray) -> np.ndarray:
        request = request_for(x.shape)
        request.infer({0: x}, share_inputs=True)
        return request.get_output_tensor(0).data

    return PeerOp("openvino", params.op, forward, None, _to_numpy, lambda y: torch.from_numpy(np.array(y)), _no_wait,
                  f"{threads} (INFERENCE_NUM_THREADS), one stream")


# --- TensorFlow ----------------------------------------------------------------------
def _tensorflow_threads(tf, threads: int) -> str:
    """Sets TensorFlow's thread pools, which is possible only before it runs anything."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process
        pass
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    if (intra, inter) != (threads, threads):
        return f"{intra} intra-op, {inter} inter-op (0: all cores): TensorFlow had started before, not {threads}"
    return f"{threads} intra-op, {threads} inter-op"


def _tensorflow(params: _Params, threads: int) -> PeerOp:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr
    import tensorflow as tf

    threads_note = _tensorflow_threads(tf, threads)
    radius = (params.size - 1) // 2

    def compute(x):  # NHWC
        if params.lrn:
            x = tf.nn.local_response_normalization(tf.nn.relu(x), depth_radius=radius, bias=params.k,
                                                   alpha=params.alpha / params.size, beta=params.beta)
        if params.pool:
            x = tf.nn.max_pool2d(x, params.kernel_size, params.stride, "VALID")
        return x

    @tf.function
    def forward_backward(x, grad):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = compute(x)
        return tape.gradient(y, x, output_gradients=grad)

    return PeerOp("tensorflow", params.op, tf.function(compute), forward_backward,
                  lambda t: tf.constant(_to_numpy(t.permute(0, 2, 3, 1))),
                  lambda y: torch.from_numpy(y.numpy()).permute(0, 3, 1, 2), _no_wait, threads_note)


# --- JAX -------------------------------------------------------------------------------
_XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _limit_xla_threads(threads: int) -> None:
    """XLA's CPU thread pool cannot be sized from Python; it can be limited to
    one thread through XLA_FLAGS before jax is first imported."""
    if threads == 1 and "jax" not in sys.modules and _XLA_ONE_THREAD not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_ONE_THREAD}".strip()


def _jax_threads(threads: int) -> str:
    if _XLA_ONE_THREAD in os.environ.get("XLA_FLAGS", ""):
        return "1 (XLA_FLAGS)" if threads == 1 else f"1 (XLA_FLAGS set before jax started), not {threads}"
    return f"XLA's own thread pool (only 1 thread can be asked for, before jax starts), not {threads}"


def _jax(params: _Params, threads: int) -> PeerOp:
    threads_note = _jax_threads(threads)
    import jax
    import jax.numpy as jnp
    from jax import lax

    n = params.size

    def compute(x):  # NCHW
        if params.lrn:
            a = jax.nn.relu(x)  # gradient 0 at 0, as torch.relu's
            window_sum = lax.reduce_window(a * a, 0.0, lax.add, (1, n, 1, 1), (1, 1, 1, 1),
                                           ((0, 0), (n // 2, (n - 1) // 2), (0, 0), (0, 0)))
            x = a / (params.k + params.alpha / n * window_sum) ** params.beta
        if params.pool:
            x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, params.kernel_size, params.kernel_size),
                                  (1, 1, params.stride, params.stride), "VALID")
        return x

    def forward_backward(x, grad):
        _, pullback = jax.vjp(compute, x)
        return pullback(grad)[0]

    return PeerOp("jax", params.op, jax.jit(compute), jax.jit(forward_backward),
                  lambda t: jnp.asarray(_to_numpy(t)), lambda y: torch.from_numpy(np.array(y)),
                  lambda y: y.block_until_ready(), threads_note)


_BUILDERS = {"onnxruntime": _onnxruntime, "openvino": _openvino, "tensorflow": _tensorflow, "jax": _jax}


def workload(peer_op: PeerOp, mode: str, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], object] | None:
    """A zero-argument callable doing one timed unit of ``mode`` (forward or
    forward_backward) on ``x`` (and ``grad``) converted once; None where the
    peer has no such mode (backward alone, or no autograd)."""
    if mode not in modes(peer_op.peer):
        return None
    native_x = peer_op.to_native(x)
    if mode == "forward":
        return lambda: peer_op.wait(peer_op.forward(native_x))
    native_grad = peer_op.to_native(grad)
    return lambda: peer_op.wait(peer_op.forward_backward(native_x, native_grad))
