"""AlexNet models (alexnet_fast.models): structure, parameter names and counts,
the paper's initialisation and LRN, fast vs reference parity in float64 (logits
and every gradient), torch.compile, and fp32 / bf16-autocast runs on GPU.

Parity tests build a reference model (backend="reference": nn.ReLU,
nn.LocalResponseNorm, nn.MaxPool2d) and load its state dict into the fast
model, so they also check that the two share parameter names.

Costs: a paper-variant forward + backward at 227x227 in float64 takes ~1.5 s
per image on a busy 2-core CPU; Triton's CPU interpreter takes minutes for the
model's pooling blocks at full size, so on it the blocks run at 5x5 (see
test_fast_blocks_match_reference).
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alexnet_fast
from alexnet_fast import nn as fast_nn
from alexnet_fast.models import AlexNet, alexnet
from _helpers import FAST_BACKENDS, FAST_BACKENDS_INTERPRETER_SLOW, is_slow_interpreter

CPU_BACKENDS = [p for p in FAST_BACKENDS if p.values[0] == "cpu"]
CUDA_BACKENDS = [p for p in FAST_BACKENDS if p.values[0] == "cuda"]

CONFIGS = [
    pytest.param("paper", 1, id="paper"),
    pytest.param("paper", 2, id="paper-groups2"),
    pytest.param("torchvision", 1, id="torchvision"),
]
# Inputs like the models' own: the paper fed mean-subtracted raw pixels (so
# conv1's outputs are large enough for the LRN to be far from linear),
# torchvision normalised ones.
INPUT_SCALE = {"paper": 50.0, "torchvision": 1.0}

# torchvision.models.alexnet().state_dict(), written out (torchvision has no
# CPU build here): the independent reference for the torchvision variant.
TORCHVISION_STATE = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}

PAPER_NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
PARAMETER_COUNTS = {("paper", 1): 62_378_344, ("paper", 2): 60_965_224, ("torchvision", 1): 61_100_840}


def count(model):
    return sum(p.numel() for p in model.parameters())


def on_meta(*args, **kwargs) -> AlexNet:
    """A model without storage: instant, for tests of structure only."""
    with torch.device("meta"):
        return alexnet(*args, **kwargs)


# torchvision.models.AlexNet's features, from its source (torchvision 0.2x):
# (out channels, kernel, stride, padding) of each convolution, each followed by
# a ReLU; "M" a 3x3/2 max pool.
TORCHVISION_FEATURES = [(64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M"]


def torchvision_replica(num_classes=1000, dropout=0.5):
    """torchvision.models.AlexNet's layout: its state_dict keys are the indices of
    these Sequentials."""
    features, channels = [], 3
    for spec in TORCHVISION_FEATURES:
        if spec == "M":
            features.append(nn.MaxPool2d(kernel_size=3, stride=2))
        else:
            out, kernel, stride, padding = spec
            features += [nn.Conv2d(channels, out, kernel, stride, padding), nn.ReLU(inplace=True)]
            channels = out
    classifier, width = [], channels * 6 * 6
    for hidden in (4096, 4096):  # fc6, fc7
        classifier += [nn.Dropout(p=dropout), nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    model = nn.Module()
    model.features = nn.Sequential(*features)
    model.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    model.classifier = nn.Sequential(*classifier, nn.Linear(width, num_classes))
    model.forward = lambda x: model.classifier(torch.flatten(model.avgpool(model.features(x)), 1))
    return model


def model_pair(variant, groups, backend, dtype, device, num_classes=1000):
    """(reference, fast) models with the same parameters."""
    reference = alexnet(variant, num_classes=num_classes, groups=groups, backend="reference").to(device, dtype)
    fast = alexnet(variant, num_classes=num_classes, groups=groups, backend=backend).to(device, dtype)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def make_input(variant, batch, dtype, device, seed=1):
    generator = torch.Generator().manual_seed(seed)
    size = {"paper": 227, "torchvision": 224}[variant]
    x = torch.randn(batch, 3, size, size, dtype=torch.float64, generator=generator) * INPUT_SCALE[variant]
    return x.to(device, dtype)


def forward_backward(model, x, seed=2):
    """Logits, input gradient and parameter gradients of a training step
    (dropout on; the seed gives both models the same dropout masks)."""
    model.train()
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    torch.manual_seed(seed)
    logits = model(x)
    weights = torch.randn(logits.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    (logits * weights.to(logits.device, logits.dtype)).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    return logits.detach(), x.grad, grads


def assert_rel_close(actual, expected, rtol, name=""):
    """Relative to each value, with an absolute floor of rtol x 1% of the largest (cancellation)."""
    assert actual is not None and expected is not None, name
    floor = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(
        actual.double(), expected.double(), rtol=rtol, atol=rtol * floor * 1e-2 + 1e-30,
        msg=lambda m: f"{name}: {m}",
    )


# --- structure -------------------------------------------------------------------
def test_public_name():
    assert alexnet_fast.models.alexnet is alexnet and isinstance(on_meta(), nn.Module)


@pytest.mark.parametrize("backend", ["reference", "auto"])
@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_parameter_counts(variant, groups, backend):
    assert count(on_meta(variant, groups=groups, backend=backend)) == PARAMETER_COUNTS[variant, groups]


def test_paper_parameter_names_and_groups():
    for groups in (1, 2):
        model = on_meta(groups=groups)
        names = [f"features.{n}" for n in PAPER_NAMES[:5]] + [f"classifier.{n}" for n in PAPER_NAMES[5:]]
        assert list(model.state_dict()) == [f"{n}.{p}" for n in names for p in ("weight", "bias")]
        convs = {name: getattr(model.features, name) for name in PAPER_NAMES[:5]}
        assert [c.groups for c in convs.values()] == [1, groups, 1, groups, groups]
        assert [c.out_channels for c in convs.values()] == [96, 256, 384, 384, 256]
        assert [c.kernel_size for c in convs.values()] == [(11, 11), (5, 5), (3, 3), (3, 3), (3, 3)]
        assert [c.stride for c in convs.values()] == [(4, 4)] + [(1, 1)] * 4
        assert [c.padding for c in convs.values()] == [(0, 0), (2, 2), (1, 1), (1, 1), (1, 1)]
        assert model.classifier.fc6.in_features == 9216 and model.classifier.fc8.out_features == 1000
        assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert on_meta(num_classes=10, dropout=0.25).classifier.fc8.out_features == 10
    assert [m.p for m in on_meta(dropout=0.25).modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]


@pytest.mark.parametrize("backend", ["reference", "auto", "cpu"])
def test_torchvision_state_dict_keys(backend):
    model = on_meta("torchvision", backend=backend)
    state = model.state_dict()
    assert list(state) == list(TORCHVISION_STATE)
    assert {name: tuple(t.shape) for name, t in state.items()} == TORCHVISION_STATE
    assert count(model) == 61_100_840 == sum(math.prod(s) for s in TORCHVISION_STATE.values())


@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_state_dicts_move_between_reference_and_fast(variant, groups):
    reference = on_meta(variant, groups=groups, backend="reference")
    fast = on_meta(variant, groups=groups, backend="auto")
    shapes = {name: t.shape for name, t in reference.state_dict().items()}
    assert shapes == {name: t.shape for name, t in fast.state_dict().items()}
    # load_state_dict checks names and shapes (strict); meta tensors copy nothing.
    fast.load_state_dict(reference.state_dict())
    reference.load_state_dict(fast.state_dict())


@pytest.mark.parametrize("backend", ["auto", "reference", "cpu", "cuda", "triton"])
@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_modules_and_backend(variant, backend):
    """The reference model is plain PyTorch; the fast model uses the fused op
    for both ReLU+LRN+pool blocks (paper) and the fast max-pool elsewhere, and
    passes its backend to every fast module."""
    model = on_meta(variant, backend=backend)
    assert model.backend == backend and model.variant == variant
    fused = [m for m in model.modules() if isinstance(m, fast_nn.ReLULRNMaxPool2d)]
    pools = [m for m in model.modules() if isinstance(m, fast_nn.MaxPool2d)]
    torch_lrns = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm)]
    torch_pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    n_lrn = 2 if variant == "paper" else 0
    if backend == "reference":
        assert not fused and not pools
        assert len(torch_lrns) == n_lrn and len(torch_pools) == 3
        assert not any(type(m).__module__.startswith("alexnet_fast") for m in model.modules() if m is not model)
    else:
        assert not torch_lrns and not torch_pools
        assert len(fused) == n_lrn and len(pools) == 3 - n_lrn
        assert all(m.backend == backend for m in fused + pools)
    for pool in fused + pools + torch_pools:
        assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 0, False)


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_paper_lrn_hyperparameters(backend):
    """The LRN modules expose PyTorch's size, alpha, beta, k: the paper's
    k=2, n=5, alpha=1e-4 (summed) is PyTorch's alpha=5e-4 (averaged)."""
    model = on_meta(backend=backend)
    lrns = [m for m in model.modules() if isinstance(m, (nn.LocalResponseNorm, fast_nn.ReLULRNMaxPool2d))]
    assert len(lrns) == 2
    for lrn in lrns:
        assert (lrn.size, lrn.beta, lrn.k) == (5, 0.75, 2.0)
        assert lrn.alpha == pytest.approx(5e-4, rel=1e-12)


def paper_lrn_by_hand(a):
    """b = a / (2 + 1e-4 * sum_{5 channels around c} a^2)^0.75, zeros beyond the edges."""
    squares = F.pad(a.square(), (0, 0, 0, 0, 2, 2))
    window_sums = sum(squares[:, i : i + a.shape[1]] for i in range(5))
    return a / (2 + 1e-4 * window_sums) ** 0.75


@pytest.mark.parametrize(
    "device,backend", [pytest.param("cpu", "reference", id="cpu-reference"), *FAST_BACKENDS]
)
def test_paper_lrn_is_the_papers_formula(device, backend):
    model = on_meta(backend=backend)  # the block has no parameters
    x = torch.randn(2, 96, 7, 7, dtype=torch.float64) * 30  # sum a^2 ~ 1e4: far from linear
    expected = F.max_pool2d(paper_lrn_by_hand(torch.relu(x)), 3, 2)
    if backend == "reference":
        block = nn.Sequential(model.features.relu1, model.features.lrn1, model.features.pool1)
    else:
        block = model.features.lrn_pool1
    out = block(x.to(device))
    assert_rel_close(out.cpu(), expected, 1e-12, "relu -> lrn -> pool")


# --- initialisation ----------------------------------------------------------------
@pytest.mark.parametrize("groups,backend", [(1, "reference"), (2, "auto")])
def test_paper_initialisation(groups, backend):
    """Weights N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0."""
    model = alexnet(groups=groups, backend=backend)
    layers = {name: module for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}
    assert [name.split(".")[-1] for name in layers] == PAPER_NAMES
    for name, layer in layers.items():
        w = layer.weight.detach().double()
        # Sampling error of the std is ~1/sqrt(2n) (0.4% for conv1's 34,848 weights).
        assert w.std().item() == pytest.approx(0.01, rel=0.03), name
        assert abs(w.mean().item()) < 5 * 0.01 / math.sqrt(w.numel()), name
        expected_bias = 1.0 if name.split(".")[-1] in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert torch.equal(layer.bias.detach(), torch.full_like(layer.bias, expected_bias)), name


def test_torchvision_variant_keeps_pytorch_initialisation():
    """As torchvision does: PyTorch's default (kaiming-uniform) weights, uniform biases."""
    model = alexnet("torchvision")
    for layer in [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
        fan_in = layer.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and the bias bound
        assert layer.weight.abs().max().item() <= bound
        assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert layer.bias.abs().max().item() <= bound and layer.bias.std().item() > 0


# --- arguments -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(variant="vgg"), "variant"),
        (dict(variant=None), "variant"),
        (dict(num_classes=0), "num_classes"),
        (dict(num_classes=-3), "num_classes"),
        (dict(num_classes=10.0), "num_classes"),
        (dict(num_classes=True), "num_classes"),
        (dict(groups=3), "groups"),
        (dict(groups=0), "groups"),
        (dict(groups=2.0), "groups"),
        (dict(variant="torchvision", groups=2), "groups"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(dropout="0.5"), "dropout"),
        (dict(backend="gpu"), "backend"),
        (dict(backend=None), "backend"),
    ],
    ids=str,
)
def test_invalid_arguments(kwargs, name):
    value = kwargs[name]
    with pytest.raises(ValueError, match=rf"{name}.*{re.escape(repr(value))}"):
        on_meta(**kwargs)


# --- forward ---------------------------------------------------------------------------
@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_reference_model_shapes(variant, groups):
    model = alexnet(variant, num_classes=10, groups=groups, backend="reference").eval()
    x = make_input(variant, 1, torch.float32, "cpu")
    shapes = []
    h = x
    with torch.no_grad():
        for layer in model.features:
            h = layer(h)
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                shapes.append(tuple(h.shape[1:]))
        logits = model(x)
    if variant == "paper":  # 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 6: 256 * 6 * 6 = 9216
        assert shapes == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13)] + [
            (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)
        ]
    else:
        assert shapes == [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13)] + [
            (384, 13, 13), (256, 13, 13), (256, 13, 13), (256, 6, 6)
        ]
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_torchvision_weights_load_unchanged(backend):
    """A torchvision-layout model's state dict loads into the torchvision variant
    (strict) and gives the same logits."""
    replica = torchvision_replica().double().eval()
    model = alexnet("torchvision", backend=backend).double().eval()
    model.load_state_dict(replica.state_dict())
    x = make_input("torchvision", 1, torch.float64, "cpu")
    with torch.no_grad():
        assert_rel_close(model(x), replica.forward(x), 1e-12, "logits")


# --- fast vs reference -----------------------------------------------------------------
@pytest.mark.parametrize("device,backend", CPU_BACKENDS)
@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_fast_matches_reference_float64(variant, groups, device, backend):
    """Logits, the input gradient and every parameter's gradient of a training
    step (dropout on, the same masks) agree to 1e-7 relative."""
    if is_slow_interpreter(device, backend):
        pytest.skip(
            "Triton's CPU interpreter needs many minutes for the whole model; "
            "test_fast_blocks_match_reference runs its fast blocks on it"
        )
    reference, fast = model_pair(variant, groups, backend, torch.float64, device)
    x = make_input(variant, 2, torch.float64, device)
    logits, x_grad, grads = forward_backward(fast, x)
    ref_logits, ref_x_grad, ref_grads = forward_backward(reference, x)
    assert_rel_close(logits, ref_logits, 1e-7, "logits")
    assert_rel_close(x_grad, ref_x_grad, 1e-7, "input gradient")
    assert list(grads) == list(ref_grads)
    for name in ref_grads:
        assert_rel_close(grads[name], ref_grads[name], 1e-7, f"gradient of {name}")


def fast_blocks(variant):
    """(fast module name, reference module names, input shape (C, H, W)) of the
    model's fast blocks, at the shapes they see in the model."""
    if variant == "paper":
        return [
            ("lrn_pool1", ["relu1", "lrn1", "pool1"], (96, 55, 55)),
            ("lrn_pool2", ["relu2", "lrn2", "pool2"], (256, 27, 27)),
            ("pool5", ["pool5"], (256, 13, 13)),
        ]
    return [("2", ["2"], (64, 55, 55)), ("5", ["5"], (192, 27, 27)), ("12", ["12"], (256, 13, 13))]


@pytest.mark.parametrize("device,backend", FAST_BACKENDS_INTERPRETER_SLOW)
@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_fast_blocks_match_reference(variant, device, backend):
    """Each fast block of the model against the reference model's modules, in
    float64: output and input gradient. Batch 2 at the model's shapes; on
    Triton's CPU interpreter (~0.5 s per program instance here) batch 1 at
    5x5 (all channels; 2x2 outputs)."""
    reference = on_meta(variant, backend="reference")
    fast = on_meta(variant, backend=backend)
    for fast_name, reference_names, (c, h, w) in fast_blocks(variant):
        fast_block = fast.features.get_submodule(fast_name)
        reference_block = nn.Sequential(*[reference.features.get_submodule(n) for n in reference_names])
        # 5x5: two overlapping windows per row and column (2x2 outputs).
        shape = (1, c, 5, 5) if is_slow_interpreter(device, backend) else (2, c, h, w)
        x = torch.randn(shape, dtype=torch.float64) * 10
        grad = torch.randn(F.max_pool2d(x, 3, 2).shape, dtype=torch.float64)
        outputs = []
        for block, on in ((reference_block, "cpu"), (fast_block, device)):
            x_ = x.to(on).requires_grad_()
            out = block(x_.clone())  # the reference's ReLU is in place
            out.backward(grad.to(on))
            outputs.append((out.detach().cpu(), x_.grad.cpu()))
        (ref_out, ref_grad), (out, x_grad) = outputs
        assert_rel_close(out, ref_out, 1e-7, f"{fast_name} output")
        assert_rel_close(x_grad, ref_grad, 1e-7, f"{fast_name} input gradient")


def test_compile_fullgraph():
    """torch.compile(fullgraph=True) traces the whole fast paper model (fused blocks and
    fast max-pool, forward and backward) on the cpu backend, and computes what the eager
    model computes. In float64 (Inductor compiles it on the CPU), with dropout on: an
    fp32 input gradient through the paper's network is not a stable quantity (its
    near-zero elements are sums of cancelling terms of ~1e-5, and near-ties in the pools
    move gradients; PyTorch's own compiled reference model differs from its eager one by
    ~1e-2 of the largest gradient on AVX2 CPUs), while float64 agrees to 1e-7."""
    reference, fast = model_pair("paper", 1, "cpu", torch.float64, "cpu", num_classes=10)
    compiled = torch.compile(fast, fullgraph=True)
    x = make_input("paper", 1, torch.float64, "cpu")
    # Dropout through eager PyTorch's random stream: the same masks as the eager runs.
    with torch._inductor.config.patch(fallback_random=True):
        logits, x_grad, grads = forward_backward(compiled, x)
    grads = {name.removeprefix("_orig_mod."): grad for name, grad in grads.items()}
    eager_logits, eager_x_grad, eager_grads = forward_backward(fast, x)
    ref_logits, ref_x_grad, ref_grads = forward_backward(reference, x)
    for name, (ours, eager, ref) in {
        "logits": (logits, eager_logits, ref_logits),
        "input gradient": (x_grad, eager_x_grad, ref_x_grad),
        **{f"gradient of {n}": (grads[n], eager_grads[n], r) for n, r in zip(grads, ref_grads.values())},
    }.items():
        assert_rel_close(ours, eager, 1e-9, f"compiled vs eager: {name}")
        assert_rel_close(ours, ref, 1e-7, f"compiled vs reference: {name}")


# --- GPU -------------------------------------------------------------------------------
@pytest.fixture
def no_tf32():
    """Full fp32 convolutions and matmuls, so that fast vs reference differences
    are the operators' own (TF32 would round both models' inputs to 10 bits)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("device,backend", CUDA_BACKENDS)
@pytest.mark.parametrize("variant,groups", CONFIGS)
def test_cuda_float32_parity(variant, groups, device, backend, no_tf32):
    """fp32 on the GPU: logits to 2e-4, gradients to 1e-3 relative (a near-tie
    in a pooling window, 1 ulp apart, may route one gradient differently). On
    CPU in fp32 the same comparison needs 3e-5 for both."""
    reference, fast = model_pair(variant, groups, backend, torch.float32, device)
    x = make_input(variant, 4, torch.float32, device)
    ref_logits, _, ref_grads = forward_backward(reference, x)
    logits, _, grads = forward_backward(fast, x)
    assert_rel_close(logits, ref_logits, 2e-4, "logits")
    for name in ref_grads:
        assert_rel_close(grads[name], ref_grads[name], 1e-3, f"gradient of {name}")


@pytest.mark.parametrize("device,backend", CUDA_BACKENDS)
@pytest.mark.parametrize("variant", ["paper", "torchvision"])
def test_cuda_bfloat16_autocast(variant, device, backend):
    """Forward and backward under bf16 autocast: bf16 logits within bf16's
    accuracy of the fp32 reference model (3e-3 relative in norm, seen on CPU
    autocast), finite float32 gradients. Without dropout (eval): its masks
    need not match between bf16 and fp32 tensors."""
    reference, fast = model_pair(variant, 1, backend, torch.float32, device)
    reference.eval()
    fast.eval()
    x = make_input(variant, 4, torch.float32, device)
    with torch.no_grad():
        ref_logits = reference(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = fast(x.requires_grad_())
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()
    error = (logits.float() - ref_logits).norm() / ref_logits.norm()
    assert error < 5e-2, f"bf16 logits differ from fp32 by {error:.3g} (relative norm)"
    logits.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in fast.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_paper_variant_says_which_input_size_it_takes():
    model = alexnet(num_classes=10, backend="reference")
    with pytest.raises(ValueError, match=r"the paper variant takes 227 x 227 images .*got input shape \(1, 3, 224, 224\)"
                       r".*variant='torchvision'\) takes 224 x 224"):
        model(torch.randn(1, 3, 224, 224))
