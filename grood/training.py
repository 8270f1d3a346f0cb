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


@dataclass
class TrainConfig:
    arch: str = "lenet"
    width: int | None = None
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    precision: str = "auto"
    augment: bool = False
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


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


def train(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, device: torch.device) -> TrainResult:
    """Train from scratch; the same ``cfg`` (seed included) and thread count give the same weights on CPU."""
    g = seed_everything(cfg.seed)
    y_np, classes = encode_labels(labels)
    spec = spec_from_training(images)
    x_all = to_tensor(images, spec, "training images")
    y_all = torch.from_numpy(y_np)
    model = build_model(cfg.arch, spec.channels, len(classes), cfg.width).to(device)
    model = model.to(memory_format=torch.channels_last)

    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
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
            if cfg.augment:
                xb = _random_shift(xb, g)
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
    model = build_model(ckpt["arch"], ckpt["spec"]["channels"], ckpt["num_classes"], ckpt["width"])
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    return model, {k: v for k, v in ckpt.items() if k != "state_dict"}
