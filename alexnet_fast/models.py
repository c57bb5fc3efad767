"""AlexNet on the fast operators: the 2012 paper's network and torchvision's.

    model = alexnet_fast.models.alexnet()                       # the paper's, 227x227
    model = alexnet_fast.models.alexnet("torchvision")          # torchvision's, 224x224
    model.load_state_dict(torchvision_alexnet.state_dict())     # loads unchanged

``backend="reference"`` builds the same network from plain PyTorch modules
(nn.ReLU, nn.LocalResponseNorm, nn.MaxPool2d; with groups=2 each LRN is an
nn.Sequential that puts the towers in the batch around nn.LocalResponseNorm)
under the same parameter names, so a state dict moves freely between a
reference and a fast model.

Paper variant (Krizhevsky, Sutskever, Hinton 2012), parameter names::

    features.conv1   Conv2d(3, 96, 11, stride=4)                 227 -> 55
    features.lrn_pool1  ReLU -> LRN -> MaxPool(3, 2)             55 -> 27
    features.conv2   Conv2d(96, 256, 5, padding=2, groups)       27
    features.lrn_pool2  ReLU -> LRN -> MaxPool(3, 2)             27 -> 13
    features.conv3   Conv2d(256, 384, 3, padding=1)              13
    features.conv4   Conv2d(384, 384, 3, padding=1, groups)      13
    features.conv5   Conv2d(384, 256, 3, padding=1, groups)      13
    features.pool5   MaxPool(3, 2) (after relu5)                  13 -> 6
    classifier.fc6   Linear(256 * 6 * 6 = 9216, 4096) (after drop6; then relu6)
    classifier.fc7   Linear(4096, 4096) (after drop7; then relu7)
    classifier.fc8   Linear(4096, num_classes)

(conv3, conv4 and conv5 are each followed by a ReLU: relu3, relu4, relu5.)

In the fast model ``lrn_pool1``/``lrn_pool2`` are one fused
:class:`alexnet_fast.nn.ReLULRNMaxPool2d` each and ``pool5`` is
:class:`alexnet_fast.nn.MaxPool2d`; in the reference model the ReLU, LRN and
pool are separate modules (``relu1, lrn1, pool1`` ...). None of these has
parameters, so the state dict keys are the same. relu3 ... relu7 are
``nn.ReLU`` and drop6, drop7 ``nn.Dropout`` in both.

Parameter counts (weights + biases):

    layer  groups=1                        groups=2 (conv2, conv4, conv5 see half their inputs)
    conv1  96*3*11*11 + 96     =    34,944      34,944
    conv2  256*96*5*5 + 256    =   614,656     256*48*5*5 + 256   =   307,456
    conv3  384*256*3*3 + 384   =   885,120     885,120
    conv4  384*384*3*3 + 384   = 1,327,488     384*192*3*3 + 384  =   663,936
    conv5  256*384*3*3 + 256   =   884,992     256*192*3*3 + 256  =   442,624
    fc6    9216*4096 + 4096    = 37,752,832    37,752,832
    fc7    4096*4096 + 4096    = 16,781,312    16,781,312
    fc8    4096*1000 + 1000    =  4,097,000     4,097,000
    total                        62,378,344    60,965,224

torchvision variant: torchvision.models.alexnet's layout (features.0 ...
features.12, avgpool, classifier.0 ... classifier.6) with its default
initialisation; 64-192-384-256-256 convolutions, no LRN::

    conv 3*64*11*11 + 64 = 23,296;  64*192*5*5 + 192 = 307,392;  192*384*3*3 + 384 = 663,936
    384*256*3*3 + 256 = 884,992;  256*256*3*3 + 256 = 590,080;  FC as above: 58,631,144
    total 61,100,840
"""
from __future__ import annotations

import numbers
from collections import OrderedDict

import torch
from torch import Tensor, nn

from alexnet_fast import nn as fast_nn
from alexnet_fast._backends import BACKENDS

VARIANTS = ("paper", "torchvision")

# The paper's LRN: b = a / (k + alpha * sum_{n channels} a^2)^beta, in the
# paper's (summing) convention; PyTorch's alpha is n * alpha (see alexnet_fast.nn).
PAPER_LRN = dict(n=5, alpha=1e-4, beta=0.75, k=2.0)
# Overlapping pooling: 3x3 windows, stride 2.
POOL = dict(kernel_size=3, stride=2)
INPUT_SIZE = {"paper": 227, "torchvision": 224}


def _check_args(variant, num_classes, groups, dropout, backend) -> None:
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}; got {variant!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1; got {num_classes!r}")
    allowed_groups = (1, 2) if variant == "paper" else (1,)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups not in allowed_groups:
        raise ValueError(
            f"groups must be {' or '.join(map(str, allowed_groups))} for variant={variant!r}; got {groups!r}"
        )
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1); got {dropout!r}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {backend!r}")


def _per_tower(lrn: nn.LocalResponseNorm, channels: int, groups: int) -> nn.Module:
    """``lrn`` of each block of channels / groups channels on its own, from torch.nn
    modules only (so that the reference model needs nothing else): the towers join
    the batch around the LRN, whose windows then stop at each tower's edges."""
    if groups == 1:
        return lrn
    return nn.Sequential(
        OrderedDict(
            [
                ("split_towers", nn.Unflatten(1, (groups, channels // groups))),  # (N, g, C/g, H, W)
                ("towers_as_batch", nn.Flatten(0, 1)),  # (N g, C/g, H, W)
                ("lrn", lrn),
                ("batch_as_towers", nn.Unflatten(0, (-1, groups))),
                ("join_towers", nn.Flatten(1, 2)),  # (N, C, H, W)
            ]
        )
    )


def _relu_lrn_pool(index: int, channels: int, groups: int, backend: str) -> OrderedDict:
    """ReLU -> the paper's LRN (per tower with groups=2) -> overlapping max-pool:
    one fused module, or three."""
    if backend == "reference":
        n, alpha, beta, k = PAPER_LRN.values()
        return OrderedDict(
            [
                (f"relu{index}", nn.ReLU(inplace=True)),
                (f"lrn{index}", _per_tower(nn.LocalResponseNorm(n, alpha * n, beta, k), channels, groups)),
                (f"pool{index}", nn.MaxPool2d(**POOL)),
            ]
        )
    fused = fast_nn.ReLULRNMaxPool2d.from_paper(**PAPER_LRN, **POOL, backend=backend, groups=groups)
    return OrderedDict([(f"lrn_pool{index}", fused)])


def _max_pool(backend: str) -> nn.Module:
    if backend == "reference":
        return nn.MaxPool2d(**POOL)
    return fast_nn.MaxPool2d(**POOL, backend=backend)


class AlexNet(nn.Module):
    """AlexNet; build it with :func:`alexnet` (arguments documented there).

    Attributes: ``variant, num_classes, groups, backend``, ``input_size``
    (227 for the paper's network, 224 for torchvision's), ``features``,
    ``classifier`` and, for the torchvision variant, ``avgpool``.
    """

    def __init__(
        self,
        variant: str = "paper",
        num_classes: int = 1000,
        groups: int = 1,
        dropout: float = 0.5,
        backend: str = "auto",
    ):
        super().__init__()
        _check_args(variant, num_classes, groups, dropout, backend)
        self.variant = variant
        self.num_classes = int(num_classes)
        self.groups = int(groups)
        self.backend = backend
        self.input_size = INPUT_SIZE[variant]
        if variant == "paper":
            self._build_paper(self.num_classes, self.groups, float(dropout), backend)
        else:
            self._build_torchvision(self.num_classes, float(dropout), backend)

    def _build_paper(self, num_classes: int, groups: int, dropout: float, backend: str) -> None:
        layers = OrderedDict()
        layers["conv1"] = nn.Conv2d(3, 96, kernel_size=11, stride=4)
        layers.update(_relu_lrn_pool(1, 96, groups, backend))
        layers["conv2"] = nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups)
        layers.update(_relu_lrn_pool(2, 256, groups, backend))
        layers["conv3"] = nn.Conv2d(256, 384, kernel_size=3, padding=1)
        layers["relu3"] = nn.ReLU(inplace=True)
        layers["conv4"] = nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups)
        layers["relu4"] = nn.ReLU(inplace=True)
        layers["conv5"] = nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups)
        layers["relu5"] = nn.ReLU(inplace=True)
        layers["pool5"] = _max_pool(backend)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("drop6", nn.Dropout(dropout)),
                    ("fc6", nn.Linear(256 * 6 * 6, 4096)),
                    ("relu6", nn.ReLU(inplace=True)),
                    ("drop7", nn.Dropout(dropout)),
                    ("fc7", nn.Linear(4096, 4096)),
                    ("relu7", nn.ReLU(inplace=True)),
                    ("fc8", nn.Linear(4096, num_classes)),
                ]
            )
        )
        self.reset_parameters()

    def _build_torchvision(self, num_classes: int, dropout: float, backend: str) -> None:
        # Indices are torchvision's state_dict keys: keep the order.
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            _max_pool(backend),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            _max_pool(backend),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            _max_pool(backend),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The paper's initialisation (paper variant): every weight N(0, 0.01^2);
        biases 1 in conv2, conv4, conv5, fc6 and fc7 (to give the ReLUs positive
        inputs early on), 0 in conv1, conv3 and fc8. The torchvision variant
        keeps PyTorch's default initialisation, as torchvision does."""
        if self.variant != "paper":
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.reset_parameters()
            return
        ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
        for name, module in [*self.features.named_children(), *self.classifier.named_children()]:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.constant_(module.bias, 1.0 if name in ones else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        if self.variant == "paper" and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            # Without adaptive pooling, fc6's 9216 inputs (256 x 6 x 6) fix the image size.
            raise ValueError(
                f"the paper variant takes {self.input_size} x {self.input_size} images (fc6 expects 256 x 6 x 6 "
                f"features); got input shape {tuple(x.shape)}. alexnet(variant='torchvision') takes 224 x 224, "
                "and any size from 63 up (adaptive pooling)"
            )
        x = self.features(x)
        if self.variant == "torchvision":
            x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, groups={self.groups}, input_size={self.input_size}, backend={self.backend!r}"


def alexnet(
    variant: str = "paper",
    num_classes: int = 1000,
    groups: int = 1,
    dropout: float = 0.5,
    backend: str = "auto",
) -> AlexNet:
    """AlexNet as an ``nn.Module``.

    variant: ``"paper"`` — the 2012 paper's network on 227x227 inputs: conv1
        96@11x11/4 -> ReLU -> LRN -> pool 3/2; conv2 256@5x5 pad 2 -> ReLU ->
        LRN -> pool; conv3 384@3x3; conv4 384@3x3; conv5 256@3x3 -> ReLU ->
        pool; dropout -> FC 9216->4096 -> ReLU -> dropout -> 4096->4096 ->
        ReLU -> 4096->num_classes. LRN is the paper's
        ``b = a / (2 + 1e-4 * sum_5 a^2)^0.75`` (PyTorch's size 5, alpha 5e-4,
        beta 0.75, k 2), fused with the ReLU and pool. Initialised as in the
        paper (:meth:`AlexNet.reset_parameters`).
        ``"torchvision"`` — ``torchvision.models.alexnet``'s network on
        224x224 inputs, with its state_dict keys (its weights load unchanged).
    num_classes: outputs of the last layer (>= 1).
    groups: 2 gives the paper's two towers: conv2, conv4 and conv5 see only
        their tower's channels, and each LRN normalises each tower's maps on
        their own (48 of conv1's 96, 128 of conv2's 256); paper variant only.
    dropout: dropout probability before fc6 and fc7, in [0, 1).
    backend: the fast operators' backend ('auto', 'cpu', 'cuda', 'triton'),
        passed to every fast module; 'reference' builds the network from plain
        PyTorch modules with the same parameter names.
    """
    return AlexNet(variant, num_classes, groups, dropout, backend)


__all__ = ["AlexNet", "alexnet", "VARIANTS"]


def convert(model: AlexNet, backend: str = "reference") -> AlexNet:
    """A copy of ``model`` on ``backend``'s modules, with the same state_dict.

    backend: ``"reference"`` gives the plain PyTorch network that
        ``alexnet(..., backend="reference")`` builds (nn.ReLU,
        nn.LocalResponseNorm, nn.MaxPool2d: it runs wherever torch does, and
        ``torch.export`` of it holds no alexnet_fast operator); a fast backend
        ('auto', 'cpu', 'cuda', 'triton') gives the fused modules back.
    The copy has its own tensors (same values, dtypes, devices,
    requires_grad) and ``model``'s training mode; ``model`` is unchanged.
    """
    if not isinstance(model, AlexNet):
        raise TypeError(f"model must be an alexnet_fast.models.AlexNet; got {type(model).__name__}")
    dropout = next((m.p for m in model.modules() if isinstance(m, nn.Dropout)), 0.0)
    with torch.device("meta"):  # no initialisation work: every tensor comes from model
        twin = AlexNet(model.variant, model.num_classes, model.groups, dropout, backend)
    twin.load_state_dict({name: t.detach().clone() for name, t in model.state_dict().items()}, assign=True)
    for parameter, original in zip(twin.parameters(), model.parameters(), strict=True):
        parameter.requires_grad_(original.requires_grad)
    return twin.train(model.training)
