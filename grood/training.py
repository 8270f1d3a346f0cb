"""Seeded supervised training of a :class:`~grood.models.StagedNet` on uint8 images."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from grood.device import autocast, seed_everything
from grood.models import StagedNet, build_model
from grood.preprocess import InputSpec, spec_from_training, to_tensor
from grood.progress import progress

log = logging.getLogger(__name__)


#: learning-rate schedules, stepped once per batch: ``cosine`` is OpenOOD v1.5's (from ``lr`` down to
#: 1e-6 over all steps), ``onecycle`` a one-cycle ramp (15% warm-up), ``constant`` none
SCHEDULERS = ("cosine", "onecycle", "constant")
#: training augmentations: ``crop_flip`` is OpenOOD's (random crop with 4 px zero padding + horizontal
#: flip), ``crop`` the crop alone (for digits and letters, which flips change), ``shift`` up to 2 px
#: translations with repeated border pixels
AUGMENTATIONS = ("none", "shift", "crop", "crop_flip")


@dataclass
class TrainConfig:
    arch: str = "lenet5"
    width: int | None = None
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    precision: str = "auto"
    augment: str = "none"
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.scheduler not in SCHEDULERS:
            raise ValueError(f"train.scheduler: {cfg.scheduler!r} is not one of {SCHEDULERS}")
        if cfg.augment not in AUGMENTATIONS:
            raise ValueError(f"train.augment: {cfg.augment!r} is not one of {AUGMENTATIONS}")
        return cfg


@dataclass
class TrainResult:
    model: StagedNet
    spec: InputSpec
    classes: list[int]
    history: list[dict] = field(default_factory=list)


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Map the training labels to 0..C-1 (e.g. an open-set split keeping digits 0–5)."""
    classes = sorted(int(c) for c in np.unique(labels))
    if len(classes) < 2:
        raise ValueError(f"training needs at least two classes, got {classes}")
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[int(c)] for c in labels], dtype=np.int64), classes


def _random_shift(x: torch.Tensor, g: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Random translation of each image by up to ``pad`` pixels (border pixels repeated)."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (n, 1, 1, w)
    batch = torch.arange(n)[:, None, None, None]
    chans = torch.arange(x.shape[1])[None, :, None, None]
    return padded[batch, chans, rows, cols]


def _random_crop(x: torch.Tensor, g: torch.Generator, fill: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """torchvision's ``RandomCrop(size, padding=pad)`` batched: pad with the (normalised) value of a
    black pixel, ``fill`` per channel, and cut a window at a random offset in [0, 2·pad]² per image."""
    n, c, h, w = x.shape
    padded = fill.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad : pad + h, pad : pad + w] = x
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]


def _random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Horizontal flip of each image with probability 1/2."""
    flip = torch.rand(len(x), generator=g) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def augment_batch(x: torch.Tensor, kind: str, g: torch.Generator, spec: InputSpec) -> torch.Tensor:
    """One of :data:`AUGMENTATIONS` on a normalised batch, drawn from ``g`` (so seeded runs repeat)."""
    if kind == "none":
        return x
    if kind == "shift":
        return _random_shift(x, g)
    black = -torch.tensor(spec.mean, dtype=x.dtype) / torch.tensor(spec.std, dtype=x.dtype)
    x = _random_crop(x, g, black)
    return _random_flip(x, g) if kind == "crop_flip" else x


def make_scheduler(opt: torch.optim.Optimizer, kind: str, lr: float, total_steps: int):
    """A per-step learning-rate schedule (:data:`SCHEDULERS`)."""
    if kind == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    if kind == "cosine":
        floor = 1e-6 / lr  # OpenOOD: lr_min = 1e-6

        def factor(step: int) -> float:
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if kind == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {kind!r}")


def train(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, device: torch.device) -> TrainResult:
    """Train from scratch; the same ``cfg`` (seed included) and thread count give the same weights on CPU."""
    g = seed_everything(cfg.seed)
    y_np, classes = encode_labels(labels)
    spec = spec_from_training(images)
    x_all = to_tensor(images, spec, "training images")
    y_all = torch.from_numpy(y_np)
    model = build_model(cfg.arch, spec.channels, len(classes), cfg.width, spec.size).to(device)
    model = model.to(memory_format=torch.channels_last)

    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=cfg.nesterov and cfg.momentum > 0)
    sched = make_scheduler(opt, cfg.scheduler, cfg.lr, total)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x_all), generator=g)
        loss_sum = correct = seen = 0
        for i in progress(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}"):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = x_all[idx]
            xb = augment_batch(xb, cfg.augment, g, spec)
            xb = xb.to(device, memory_format=torch.channels_last, non_blocking=True)
            yb = y_all[idx].to(device, non_blocking=True)
            with autocast(device, cfg.precision):
                logits = model(xb)
                loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": correct / seen,
               "lr": opt.param_groups[0]["lr"],
               "seconds": round(time.perf_counter() - t0, 2)}
        log.info("epoch %(epoch)d: loss %(loss).4f, train acc %(train_acc).4f, %(seconds).1f s", row)
        history.append(row)
    model.eval()
    return TrainResult(model.to(memory_format=torch.contiguous_format), spec, classes, history)


def save_checkpoint(path, result: TrainResult, cfg: TrainConfig, extra: dict | None = None) -> None:
    from grood.storage import atomic_path

    payload = {
        "state_dict": {k: v.cpu() for k, v in result.model.state_dict().items()},
        "arch": cfg.arch,
        "width": cfg.width,
        "num_classes": len(result.classes),
        "classes": result.classes,
        "spec": result.spec.to_dict(),
        "train_config": cfg.__dict__,
        "history": result.history,
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path, device: torch.device | str = "cpu") -> tuple[StagedNet, dict]:
    """Model in eval mode on ``device`` plus the checkpoint's metadata."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # torch raises several types for a truncated/corrupt file
        raise RuntimeError(f"checkpoint {path} cannot be read ({e}); delete it and re-run the train rule") from e
    model = build_model(ckpt["arch"], ckpt["spec"]["channels"], ckpt["num_classes"], ckpt["width"],
                        ckpt["spec"]["size"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, {k: v for k, v in ckpt.items() if k != "state_dict"}
