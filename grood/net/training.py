"""Seeded supervised training of a :class:`~grood.net.models.StagedNet` on uint8 images."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from grood.net.device import autocast, seed_everything
from grood.net.greg import GRegWeights, energy, greg_plus_sample, greg_terms
from grood.net.models import StagedNet, build_model
from grood.net.preprocess import InputSpec, spec_from_training, to_tensor
from grood.net.progress import progress
from grood.net.train_config import AUGMENTATIONS, METHODS, SCHEDULERS, TrainConfig  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


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


def _load_init(model: StagedNet, state: dict) -> None:
    """Start from ``state`` (e.g. the CE backbone GReg fine-tunes); a mismatch names the fix."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"the initial weights do not fit this network ({e}); fine-tune from a "
                         f"checkpoint of the same arch, width and classes") from None


#: the outliers' random stream: SeedSequence([seed, OUTLIER_STREAM]), apart from the ID stream
OUTLIER_STREAM = 7


class OutlierFeed:
    """The auxiliary outliers of a GReg / GReg+ run, one batch per step, and the step's loss.

    The outliers have random streams of their own (order, augmentation, K-Means seeding), derived
    from the run's seed, so the ID batches, their augmentation and the initial weights are exactly
    those of a CE run with the same seed: the methods differ only in what they add.
    """

    def __init__(self, images: np.ndarray, spec: InputSpec, cfg: TrainConfig, device: torch.device):
        self.x = to_tensor(images, spec, "auxiliary outlier images")
        self.spec, self.cfg, self.device = spec, cfg, device
        self.weights = GRegWeights(float(cfg.m_in), float(cfg.m_aux), float(cfg.lambda_s),
                                   float(cfg.lambda_grad), cfg.grad_norm)
        seed = int(np.random.SeedSequence([cfg.seed, OUTLIER_STREAM]).generate_state(1)[0])
        self.g = torch.Generator().manual_seed(seed)  # outlier order and augmentation, on the CPU
        self.device_g = torch.Generator(device=device).manual_seed(seed)  # K-Means seeding, fill
        self.order, self.pos = torch.empty(0, dtype=torch.long), 0
        self.start_epoch()

    def start_epoch(self) -> None:
        self.sums: dict[str, float] = dict.fromkeys(
            ("ce", "l_s", "l_grad", "in_mask", "aux_mask", "energy_in", "energy_aux"), 0.0)
        self.n_in = self.n_aux = self.steps = 0
        self.sampler_seconds = 0.0

    def _next_indices(self, n: int) -> torch.Tensor:
        """The next ``n`` outliers of an endless walk through seeded permutations of the set."""
        parts = []
        while n > 0:
            if self.pos == len(self.order):
                self.order, self.pos = torch.randperm(len(self.x), generator=self.g), 0
            take = self.order[self.pos : self.pos + n]
            self.pos += len(take)
            n -= len(take)
            parts.append(take)
        return torch.cat(parts)

    def batch(self, model: StagedNet) -> torch.Tensor:
        """This step's outliers, augmented like the ID batch: GReg takes the next ``aux_batch``,
        GReg+ draws a pool of ``pool`` and keeps the ``aux_step`` its energy-based sampling picks."""
        cfg = self.cfg
        plus = cfg.method == "greg_plus"
        xa = self.x[self._next_indices(cfg.pool if plus else cfg.aux_batch)]
        xa = augment_batch(xa, cfg.augment, self.g, self.spec)
        xa = xa.to(self.device, memory_format=torch.channels_last, non_blocking=True)
        if plus:
            t0 = time.perf_counter()
            with autocast(self.device, cfg.precision):
                pick = greg_plus_sample(model, xa, cfg.aux_batch, cfg.n_clusters, cfg.with_highest,
                                        cfg.kmeans_n_init, self.device_g)
            xa = xa[pick]
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.sampler_seconds += time.perf_counter() - t0
        return xa

    def loss(self, model: StagedNet, xb: torch.Tensor, yb: torch.Tensor,
             loss_fn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(ID logits, CE + λ_S·L_S + λ_∇·L_∇) of one step: ID and outliers in one forward pass."""
        n = len(xb)
        x = torch.cat([xb, self.batch(model)]).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        with autocast(self.device, self.cfg.precision):
            logits = model(x)
        ce = loss_fn(logits[:n].float(), yb)
        e = energy(logits)
        terms = greg_terms(e, x, n, self.weights)
        n_aux = len(x) - n
        for key, value in (("ce", ce.detach() * n), ("l_s", terms.l_s), ("l_grad", terms.l_grad),
                           ("in_mask", terms.in_mask.sum()), ("aux_mask", terms.aux_mask.sum()),
                           ("energy_in", e[:n].detach().sum()), ("energy_aux", e[n:].detach().sum())):
            self.sums[key] += float(value)
        self.n_in, self.n_aux, self.steps = self.n_in + n, self.n_aux + n_aux, self.steps + 1
        return logits[:n], ce + terms.loss

    def epoch_log(self) -> dict:
        """The epoch's loss parts: CE per ID sample, L_S and L_∇ per step, the share of ID /
        outlier samples inside their margin (the L_∇ masks), mean energies, sampler cost."""
        s, steps = self.sums, max(self.steps, 1)
        row = {"ce": s["ce"] / self.n_in, "l_s": s["l_s"] / steps, "l_grad": s["l_grad"] / steps,
               "in_mask": s["in_mask"] / self.n_in, "aux_mask": s["aux_mask"] / self.n_aux,
               "energy_in": s["energy_in"] / self.n_in, "energy_aux": s["energy_aux"] / self.n_aux}
        if self.cfg.method == "greg_plus":
            row["sampler_seconds"] = round(self.sampler_seconds, 2)
            row["sampler_ms_per_step"] = round(1000 * self.sampler_seconds / steps, 2)
        return row


def train(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, device: torch.device,
          aux_images: np.ndarray | None = None, init: dict | None = None) -> TrainResult:
    """Train from scratch, or fine-tune from ``init`` (a state dict of the same architecture); the
    same ``cfg`` (seed included), ``init`` and thread count give the same weights on CPU.

    ``method: ce`` trains on the ID images alone; ``greg`` / ``greg_plus`` also need ``aux_images``,
    uint8 auxiliary outliers, converted with the ID set's input spec and augmented like it.
    """
    cfg.validate()
    if cfg.method == "ce" and aux_images is not None:
        raise ValueError("auxiliary outlier images were given but train.method is 'ce', which does not "
                         "use them; set train.method to greg or greg_plus, or leave the outliers out")
    if cfg.method != "ce" and aux_images is None:
        raise ValueError(f"train.method {cfg.method!r} needs auxiliary outlier images (aux_images); "
                         f"name an auxiliary dataset for this benchmark, or use method ce")
    if (cfg.init is None) != (init is None):
        raise ValueError(f"train.init is {cfg.init!r} but initial weights were "
                         f"{'not ' if init is None else ''}given; pass the weights of benchmark "
                         f"{cfg.init!r}'s backbone, or set train.init to the benchmark they come from")
    g = seed_everything(cfg.seed)
    y_np, classes = encode_labels(labels)
    spec = spec_from_training(images)
    x_all = to_tensor(images, spec, "training images")
    y_all = torch.from_numpy(y_np)
    model = build_model(cfg.arch, spec.channels, len(classes), cfg.width, spec.size).to(device)
    if init is not None:
        _load_init(model, init)
    model = model.to(memory_format=torch.channels_last)
    outliers = None if cfg.method == "ce" else OutlierFeed(aux_images, spec, cfg, device)

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
        if outliers is not None:
            outliers.start_epoch()
        for i in progress(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}"):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = x_all[idx]
            xb = augment_batch(xb, cfg.augment, g, spec)
            xb = xb.to(device, memory_format=torch.channels_last, non_blocking=True)
            yb = y_all[idx].to(device, non_blocking=True)
            if outliers is None:
                with autocast(device, cfg.precision):
                    logits = model(xb)
                    loss = loss_fn(logits.float(), yb)
            else:
                logits, loss = outliers.loss(model, xb, yb, loss_fn)
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
        if outliers is not None:
            row.update(outliers.epoch_log())
            log.info("epoch %(epoch)d: CE %(ce).4f, L_S %(l_s).4f, L_grad %(l_grad).4f, ID inside m_in "
                     "%(in_mask).3f, outliers inside m_aux %(aux_mask).3f", row)
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
