"""Backbones split into named stages, so a forward pass can stop at or restart from any stage.

GROOD's OOD prototype mixes activations at an early stage and runs the rest of the network on
the mix.  That is exact only if every operation between stages is a module in the stage list (no
functional ReLU hidden in ``forward``), which is what :class:`StagedNet` guarantees: its forward is
literally the loop over ``stages``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from grood.net.source import TORCHVISION_RESNETS

ARCHITECTURES = ("lenet5", "cnn_bn_gap", "resnet18")


class StagedNet(nn.Module):
    """A classifier whose forward is ``fc(stages(x))``; stages are named and run in order.

    ``features`` is the penultimate feature ``h`` (after global pooling and flatten); ``fc`` is the
    linear head ``z = W h + b``.
    """

    def __init__(self, stages: "OrderedDict[str, nn.Module]", fc: nn.Linear):
        super().__init__()
        self.stages = nn.Sequential(stages)
        self.fc = fc

    @property
    def stage_names(self) -> list[str]:
        return [name for name, _ in self.stages.named_children()]

    def _check_stage(self, stage: str) -> int:
        names = self.stage_names
        if stage not in names:
            raise ValueError(f"unknown stage {stage!r}; this network has stages {names}")
        return names.index(stage)

    def forward_to(self, x: torch.Tensor, stage: str) -> torch.Tensor:
        """Activation after ``stage`` (inclusive)."""
        last = self._check_stage(stage)
        for i, module in enumerate(self.stages):
            x = module(x)
            if i == last:
                return x
        raise AssertionError("unreachable")

    def forward_from(self, e: torch.Tensor, stage: str) -> torch.Tensor:
        """Penultimate features from the activation ``e`` taken after ``stage``."""
        first = self._check_stage(stage) + 1
        for module in list(self.stages)[first:]:
            e = module(e)
        return e

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.stages(x))


def _conv_bn_relu(cin: int, cout: int) -> list[tuple[str, nn.Module]]:
    return [
        ("conv", nn.Conv2d(cin, cout, 3, padding=1, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
        ("relu", nn.ReLU(inplace=False)),
    ]


def lenet5(in_channels: int = 1, num_classes: int = 10, size: int = 28) -> StagedNet:
    """The LeNet of OpenOOD's MNIST benchmark: three 5×5 conv blocks (6 → 16 → 120 channels, ReLU,
    max-pooling after the first two), a 120 → 84 ReLU layer whose output is the penultimate feature,
    and a linear head.  No batch norm, no global pooling.

    Stages: ``layer1``..``layer3`` (the conv blocks) and ``head`` (flatten, 120·s² → 84, ReLU), so
    GROOD's mix-up at ``layer1`` mixes the first block's 6×14×14 activation.  On 28×28 inputs the
    third block's output is 120×1×1; other sizes flatten a larger map (``s = (size/2 − 4)/2 − 4``).
    """
    s = ((size // 2) - 4) // 2 - 4
    if s < 1:
        raise ValueError(f"lenet5 needs inputs of at least 28×28 pixels, got {size}×{size}")
    stages = OrderedDict(
        layer1=nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, 6, 5, padding=2), relu=nn.ReLU(),
                                         pool=nn.MaxPool2d(2))),
        layer2=nn.Sequential(OrderedDict(conv=nn.Conv2d(6, 16, 5), relu=nn.ReLU(), pool=nn.MaxPool2d(2))),
        layer3=nn.Sequential(OrderedDict(conv=nn.Conv2d(16, 120, 5), relu=nn.ReLU())),
        head=nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(120 * s * s, 84), relu=nn.ReLU())),
    )
    return StagedNet(stages, nn.Linear(84, num_classes))


def cnn_bn_gap(in_channels: int = 1, num_classes: int = 10, width: int = 16) -> StagedNet:
    """A VGG-like CNN with batch norm and global average pooling (28→14→7→3 before the pool).

    Accurate (99.3% on MNIST after two bf16 epochs) but not the field's MNIST network: batch norm
    plus global pooling gives bright noise large, confidently classified features, so confidence
    scores rank noise as more in-distribution than MNIST (docs/results.md, "Backbones decide rankings").
    Kept for the backbone study (config/backbones.yaml).
    """
    w = width
    stages = OrderedDict(
        stem=nn.Sequential(OrderedDict(_conv_bn_relu(in_channels, w))),
        layer1=nn.Sequential(OrderedDict(_conv_bn_relu(w, w) + [("pool", nn.MaxPool2d(2))])),
        layer2=nn.Sequential(OrderedDict(_conv_bn_relu(w, 2 * w) + [("pool", nn.MaxPool2d(2))])),
        layer3=nn.Sequential(OrderedDict(_conv_bn_relu(2 * w, 4 * w) + [("pool", nn.MaxPool2d(2))])),
        pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    )
    return StagedNet(stages, nn.Linear(4 * w, num_classes))


def resnet18(in_channels: int = 3, num_classes: int = 10, width: int = 64) -> StagedNet:
    """ResNet-18 with the CIFAR stem (3×3 conv, no max-pool), built from torchvision's BasicBlock."""
    # imported here: `import torchvision` pulls in torch._dynamo (≈ 2.5 s per job), which the
    # LeNet-based jobs of the default benchmark do not need
    from torchvision.models.resnet import BasicBlock

    def make_layer(cin: int, cout: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        return nn.Sequential(BasicBlock(cin, cout, stride, down), BasicBlock(cout, cout))

    w = width
    stages = OrderedDict(
        stem=nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, w, 3, 1, 1, bias=False),
                bn=nn.BatchNorm2d(w),
                relu=nn.ReLU(inplace=False),
            )
        ),
        layer1=make_layer(w, w, 1),
        layer2=make_layer(w, 2 * w, 2),
        layer3=make_layer(2 * w, 4 * w, 2),
        layer4=make_layer(4 * w, 8 * w, 2),
        pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    )
    net = StagedNet(stages, nn.Linear(8 * w, num_classes))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


# ------------------------------------------------------------------------- torchvision's ResNets

def staged_resnet(net: nn.Module) -> StagedNet:
    """A torchvision ``ResNet`` as a StagedNet sharing its modules (its forward, exactly)."""
    from torchvision.models import ResNet

    if not isinstance(net, ResNet):
        raise TypeError(f"staged_resnet takes a torchvision ResNet, got {type(net).__name__}")
    stages = OrderedDict(
        stem=nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool)),
        layer1=net.layer1,
        layer2=net.layer2,
        layer3=net.layer3,
        layer4=net.layer4,
        pool=nn.Sequential(OrderedDict(avgpool=net.avgpool, flatten=nn.Flatten(1))),
    )
    return StagedNet(stages, net.fc)


def torchvision_resnet(name: str, num_classes: int = 1000) -> nn.Module:
    """torchvision's ``name`` (a ResNet-family model), randomly initialised, ``num_classes`` outputs."""
    import torchvision

    if name not in TORCHVISION_RESNETS:
        raise ValueError(f"{name!r} is not a torchvision ResNet; grood splits these into stages: "
                         f"{', '.join(TORCHVISION_RESNETS)}")
    return torchvision.models.get_model(name, weights=None, num_classes=int(num_classes))


def torchvision_net(name: str, num_classes: int = 1000) -> StagedNet:
    """The StagedNet of torchvision's ``name`` with random weights (load a state_dict into it)."""
    return staged_resnet(torchvision_resnet(name, num_classes))


def build_model(arch: str, in_channels: int, num_classes: int, width: int | None = None,
                size: int = 28) -> StagedNet:
    """The network ``arch`` for ``in_channels``×``size``×``size`` inputs and ``num_classes`` outputs.

    ``torchvision/<model>`` is a torchvision ResNet wrapped into stages (:func:`torchvision_net`),
    the architecture of every pretrained or user-supplied network, randomly initialised here.
    """
    if arch.startswith("torchvision/"):
        if in_channels != 3 or width is not None:
            raise ValueError(f"{arch} takes RGB input and has fixed widths; got in_channels="
                             f"{in_channels}, width={width}")
        return torchvision_net(arch.removeprefix("torchvision/"), num_classes)
    if arch == "lenet5":
        if width is not None:
            raise ValueError("lenet5 has the fixed widths of OpenOOD's LeNet (6, 16, 120, 84); "
                             "remove train.width, or use arch cnn_bn_gap / resnet18 to set a width")
        return lenet5(in_channels, num_classes, size)
    if arch == "cnn_bn_gap":
        return cnn_bn_gap(in_channels, num_classes, width or 16)
    if arch == "resnet18":
        return resnet18(in_channels, num_classes, width or 64)
    hint = " ('lenet' is now 'cnn_bn_gap'; the field's LeNet is 'lenet5')" if arch == "lenet" else ""
    raise ValueError(f"unknown architecture {arch!r}{hint}; choose one of {ARCHITECTURES}")
