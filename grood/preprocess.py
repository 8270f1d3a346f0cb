"""Turn any dataset's uint8 images into the ID model's input format (channels, size, normalisation)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: set from the ID training set and stored in the checkpoint."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(int(d["channels"]), int(d["size"]), tuple(d["mean"]), tuple(d["std"]))


def as_nhwc(images: np.ndarray, name: str = "images") -> np.ndarray:
    """uint8 (N,H,W) or (N,H,W,C) → (N,H,W,C); anything else is an error naming ``name``."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 pixels, got {images.dtype}; convert to 0–255 uint8")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name}: expected images shaped (N,H,W) or (N,H,W,C) with C in 1/3/4, got {images.shape}"
        )
    if len(images) == 0:
        raise ValueError(f"{name}: the dataset is empty")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"{name}: images must be square to be resized for the model, got {images.shape[1:3]}")
    return images[..., :3] if images.shape[-1] == 4 else images


def spec_from_training(images: np.ndarray) -> InputSpec:
    x = as_nhwc(images, "training images").astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 1, 2))
    std = x.std(axis=(0, 1, 2)) + 1e-8
    return InputSpec(x.shape[-1], x.shape[1], tuple(map(float, mean)), tuple(map(float, std)))


def to_tensor(images: np.ndarray, spec: InputSpec, name: str = "images") -> torch.Tensor:
    """uint8 images → normalised float tensor (N, C, size, size) for the model.

    Grey is repeated to colour, colour becomes grey by ITU-R 601 luminance, and other sizes are
    resized bilinearly (with antialias) — the usual way to feed a foreign set to a fixed network.
    """
    x = torch.from_numpy(as_nhwc(images, name)).permute(0, 3, 1, 2).float().div_(255.0)
    c = x.shape[1]
    if c != spec.channels:
        if c == 1 and spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and spec.channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        else:
            raise ValueError(f"{name}: cannot convert {c} channels to the model's {spec.channels}")
    if x.shape[-1] != spec.size:
        x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()
