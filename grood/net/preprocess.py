"""Turn any dataset's uint8 images into the ID model's input format (channels, size, normalisation).

Two recipes, chosen by :attr:`InputSpec.resize`:

* ``resize`` unset (every model grood trains itself): the whole square image is resized bilinearly
  (antialiased) to ``size`` -- the MNIST/CIFAR path, unchanged;
* ``resize`` set (pretrained ImageNet backbones): torchvision's classification preset -- the
  shorter side scaled to ``resize`` (PIL bilinear), the centre ``size`` x ``size`` crop, then
  mean/std -- per image, so images of any shape and files decoded by workers come out alike.
"""

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
    #: shorter side before the centre crop (ImageNet recipe); None: resize the whole image to ``size``
    resize: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.resize is None:  # the spec stored by every model trained here stays what it was
            del d["resize"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        resize = d.get("resize")
        return cls(int(d["channels"]), int(d["size"]), tuple(d["mean"]), tuple(d["std"]),
                   None if resize is None else int(resize))


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
    With ``spec.resize`` set, each image goes through :func:`image_to_tensor`'s ImageNet recipe.
    """
    if spec.resize is not None:
        return torch.stack([_recipe(img, spec, name) for img in as_nhwc(images, name)])
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


def image_to_tensor(image: np.ndarray, spec: InputSpec, name: str = "image") -> torch.Tensor:
    """One uint8 image (H, W) or (H, W, C) → (C, size, size), exactly as :func:`to_tensor` would
    treat it in a batch; with ``spec.resize`` set, the image need not be square."""
    image = np.asarray(image)
    if spec.resize is None:
        return to_tensor(image[None], spec, name)[0]
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"{name}: expected a uint8 image (H,W) or (H,W,C) with C in 1/3/4, "
                         f"got {image.dtype} {image.shape}")
    return _recipe(image if image.ndim == 2 else image[..., :3], spec, name)


def shorter_side_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """(width, height) with the shorter side scaled to ``resize`` and the longer one in proportion,
    truncated as torchvision's ``Resize(int)`` does."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def _recipe(image: np.ndarray, spec: InputSpec, name: str) -> torch.Tensor:
    """Shorter side → ``spec.resize`` (PIL bilinear), centre crop ``spec.size``, /255, normalise."""
    from PIL import Image

    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    pil = Image.fromarray(np.ascontiguousarray(image))
    if spec.channels == 3 and pil.mode == "L":
        pil = pil.convert("RGB")
    elif spec.channels == 1 and pil.mode == "RGB":
        pil = pil.convert("L")
    elif spec.channels not in (1, 3):
        raise ValueError(f"{name}: cannot convert {pil.mode} images to the model's {spec.channels} channels")
    w, h = pil.size
    target = shorter_side_size(w, h, spec.resize)
    if target != (w, h):
        pil = pil.resize(target, Image.Resampling.BILINEAR)
    w, h = pil.size
    if min(w, h) < spec.size:
        raise ValueError(f"{name}: a {w}x{h} image is smaller than the {spec.size}-pixel centre crop; "
                         f"set train.preprocess.resize >= crop")
    top, left = int(round((h - spec.size) / 2.0)), int(round((w - spec.size) / 2.0))
    pil = pil.crop((left, top, left + spec.size, top + spec.size))
    x = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy())
    x = (x[None] if x.ndim == 2 else x.permute(2, 0, 1)).float().div_(255.0)
    mean = torch.tensor(spec.mean).view(-1, 1, 1)
    std = torch.tensor(spec.std).view(-1, 1, 1)
    return ((x - mean) / std).contiguous()
