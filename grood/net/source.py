"""Where a benchmark's network comes from, read from its ``train:`` section (torch-free).

* trained here (``arch: lenet5 | cnn_bn_gap | resnet18`` + the training options) -- the default;
* ``pretrained: torchvision/<model>[:<weights>]`` -- torchvision's weights API, e.g.
  ``torchvision/resnet50:IMAGENET1K_V1`` (``DEFAULT`` when no weights name is given);
* ``checkpoint: <file>`` + ``arch: <model>`` -- the user's own state_dict of a torchvision model.

The last two skip training; :mod:`grood.net.pretrained` builds them.  This module only parses and
checks the config, so the workflow can reject a bad one before any job (:mod:`grood.config`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

#: torchvision's ResNet family (``torchvision.models.list_models`` whose builder returns a
#: ``ResNet``; a test keeps this list equal to torchvision's): the architectures whose stages
#: (stem, layer1..layer4, pool) grood can split -- see :func:`grood.net.pretrained.staged_resnet`
TORCHVISION_RESNETS: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
)
#: the architectures grood trains itself (grood.net.models.ARCHITECTURES; a test keeps them equal)
TRAINABLE: tuple[str, ...] = ("lenet5", "cnn_bn_gap", "resnet18")
PROVIDER = "torchvision/"
KINDS = ("scratch", "pretrained", "checkpoint")
#: ``train.preprocess`` keys: each overrides one value of the weights' (or ImageNet's) recipe
PREPROCESS_KEYS = ("resize", "crop", "mean", "std")


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``train:`` section: ``kind`` (:data:`KINDS`), the architecture, the weights."""

    kind: str
    arch: str
    weights: str | None = None          # torchvision weights name (pretrained); None: DEFAULT
    checkpoint: str | None = None       # expanded path of the user's state_dict (checkpoint)
    preprocess: dict = field(default_factory=dict)

    @property
    def trains(self) -> bool:
        return self.kind == "scratch"

    @property
    def stored_arch(self) -> str:
        """The ``arch`` written into model.pt: ``torchvision/<model>`` for adopted networks."""
        return self.arch if self.trains else f"{PROVIDER}{self.arch}"


def expand_path(value: str) -> tuple[str, str | None]:
    """``value`` with ``~`` and ``$VARS`` expanded, and the first unset variable (None: all set)."""
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    return expanded, (unset[0] if unset else None)


def parse_pretrained(value: str) -> tuple[str, str | None]:
    """``torchvision/resnet50[:IMAGENET1K_V2]`` → ``("resnet50", "IMAGENET1K_V2" | None)``;
    ValueError naming the expected form."""
    if not isinstance(value, str) or not value.startswith(PROVIDER) or not value[len(PROVIDER):]:
        raise ValueError(f"{value!r} is not of the form torchvision/<model>[:<weights>], e.g. "
                         f"torchvision/resnet50 or torchvision/resnet50:IMAGENET1K_V2 "
                         f"(torchvision's weights API is the one provider grood knows)")
    model, _, weights = value[len(PROVIDER):].partition(":")
    return model, (weights or None)


def model_source(train: dict) -> ModelSource:
    """The :class:`ModelSource` of a (schema-valid) ``train:`` section; ValueError listing every
    problem :func:`train_problems` finds."""
    problems = train_problems(train, "train")
    if problems:
        raise ValueError("; ".join(problems))
    preprocess = dict(train.get("preprocess") or {})
    if train.get("pretrained"):
        model, weights = parse_pretrained(train["pretrained"])
        return ModelSource("pretrained", model, weights=weights, preprocess=preprocess)
    if train.get("checkpoint"):
        path, _ = expand_path(train["checkpoint"])
        return ModelSource("checkpoint", train["arch"], checkpoint=path, preprocess=preprocess)
    return ModelSource("scratch", train.get("arch", "lenet5"))


def train_problems(train: dict, where: str) -> list[str]:
    """What is wrong with a ``train:`` section's model source, each message naming the key
    (``where``, e.g. ``benchmarks.imagenet.train``) and the fix; empty when it is usable."""
    pretrained, checkpoint = train.get("pretrained"), train.get("checkpoint")
    families = ", ".join(TORCHVISION_RESNETS)
    problems = []
    if pretrained and checkpoint:
        return [f"{where}: set pretrained or checkpoint, not both (pretrained downloads "
                f"torchvision's weights, checkpoint loads your own file)"]
    if not (pretrained or checkpoint):
        arch = train.get("arch", "lenet5")
        if arch not in TRAINABLE:
            problems.append(f"{where}.arch: {arch!r} is a torchvision architecture, which grood does "
                            f"not train; set {where}.pretrained: torchvision/{arch} (or "
                            f"{where}.checkpoint: <your state_dict>), or train one of {list(TRAINABLE)}")
        if train.get("preprocess"):
            problems.append(f"{where}.preprocess: only pretrained / checkpoint networks take a "
                            f"preprocessing recipe (a network trained here normalises with its "
                            f"training set's mean/std); remove it, or set {where}.pretrained")
        return problems
    if pretrained:
        try:
            model, _ = parse_pretrained(pretrained)
        except ValueError as e:
            return [f"{where}.pretrained: {e}"]
        if model not in TORCHVISION_RESNETS:
            problems.append(f"{where}.pretrained: {model!r} is not a torchvision ResNet; grood "
                            f"splits these into stages (stem, layer1-4, pool): {families}")
    if checkpoint:
        path, unset = expand_path(checkpoint)
        if unset:
            problems.append(f"{where}.checkpoint: environment variable {unset} in {checkpoint!r} "
                            f"is not set; export it, or write the path out")
        elif not os.path.isfile(path):
            problems.append(f"{where}.checkpoint: {path} does not exist (relative paths are "
                            f"relative to snakemake's --directory). Fix: point it at your "
                            f"state_dict file (torch.save(model.state_dict(), path)), or use "
                            f"{where}.pretrained: torchvision/<model>")
        if train.get("arch") not in TORCHVISION_RESNETS:
            problems.append(f"{where}.arch: {train.get('arch')!r} — with checkpoint, arch names the "
                            f"torchvision architecture of the state_dict: one of {families}")
    if train.get("width") is not None:
        problems.append(f"{where}.width: the widths of a torchvision network are fixed by its "
                        f"architecture; remove width")
    pre = train.get("preprocess") or {}
    if isinstance(pre.get("resize"), int) and isinstance(pre.get("crop"), int) and pre["crop"] > pre["resize"]:
        problems.append(f"{where}.preprocess: crop {pre['crop']} is larger than resize {pre['resize']} "
                        f"(the shorter side); use crop <= resize, e.g. resize 256, crop 224")
    for key in ("mean", "std"):
        if key in pre and len(pre[key]) != 3:
            problems.append(f"{where}.preprocess.{key}: torchvision networks take RGB input, so give "
                            f"3 values (one per channel), not {len(pre[key])}")
    return problems
