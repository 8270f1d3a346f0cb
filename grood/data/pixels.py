"""Images from users' files into the dataset layer's array format.

Every source hands :func:`~grood.data.build_dataset` uint8 images shaped (N, H, W) for grey or
(N, H, W, 3) for colour, square, one size per dataset.  These helpers bring user arrays and image
files there, or say precisely why they cannot: ``what`` (a file or folder) is named in every error.

Resizing (``size``): the shorter side is scaled to ``size`` (PIL bilinear, which low-passes when
shrinking), then the centre ``size`` x ``size`` square is cropped -- torchvision's
``Resize(size) + CenterCrop(size)``, the usual test-time transform of OOD benchmarks.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

#: file name endings read as images (case-insensitive): torchvision's IMG_EXTENSIONS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
                    ".gif")

RESIZE_METHOD = ("shorter side scaled to `size` (PIL bilinear, antialiased when shrinking), then "
                 "the centre size x size square cropped (torchvision Resize + CenterCrop)")


def user_path(value: Any, source: str, param: str = "path") -> str:
    """A user's path parameter with ``~`` and ``$VARS`` expanded; unset variables are an error."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise DataError(f"param {param!r} of source {source!r} must be a path (a string), "
                        f"got {value!r}")
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise DataError(f"param {param!r} of source {source!r}: environment variable "
                        f"{unset[0]} in {value!r} is not set. Fix: export {unset[0]}=/your/data "
                        f"(the folder that holds the data sets) before running snakemake, or "
                        f"write the path out in the config")
    return expanded


def choice(p: dict, name: str, options: tuple, source: str) -> None:
    if p[name] not in options:
        raise DataError(f"param {name!r} of source {source!r} must be one of "
                        f"{', '.join(map(str, options))}, got {p[name]!r}")


def optional_int(p: dict, name: str, source: str, minimum: int) -> None:
    v = p[name]
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise DataError(f"param {name!r} of source {source!r} must be an integer >= {minimum} "
                        f"(or left out), got {v!r}")
    p[name] = int(v)


# --------------------------------------------------------------------------------- arrays
def _to_uint8(x: np.ndarray, what: str) -> tuple[np.ndarray, str | None]:
    """uint8 pixels from uint8 / bool / integer 0..255 / float 0..1 arrays; else an error."""
    if x.dtype == np.uint8:
        return x, None
    if x.dtype == bool:
        return x.astype(np.uint8) * 255, "bool pixels mapped to 0 / 255"
    if x.size == 0:
        return x.astype(np.uint8), None
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise DataError(f"{what}: integer pixels must lie in 0..255, found {lo}..{hi}. "
                            f"Fix: rescale to uint8 0..255")
        return x.astype(np.uint8), None
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{what}: pixels contain NaN or infinity")
        if lo >= 0 and hi <= 1:
            return np.rint(x * 255.0).astype(np.uint8), "float pixels in [0, 1] scaled by 255"
        raise DataError(f"{what}: float pixels must lie in [0, 1] (found {lo:.4g}..{hi:.4g}). "
                        f"Fix: save uint8 images 0..255 (or floats in [0, 1])")
    raise DataError(f"{what}: pixels of dtype {x.dtype} are not images; save uint8 0..255")


def as_images(x: Any, what: str, size: int | None = None,
              channels: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Uniform uint8 (N, S, S) / (N, S, S, 3) from an array of images; notes on what was done.

    Accepts (N, H, W), (N, H, W, C) and channels-first (N, C, H, W) with C in 1, 3, 4 (alpha
    dropped). ``channels`` (1 or 3) forces grey / colour; ``size`` resizes (see module doc).
    Non-square images need ``size``; 2-channel or other shapes are errors naming ``what``.
    """
    x = np.asarray(x)
    notes: list[str] = []
    if x.ndim == 4 and x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = np.moveaxis(x, 1, -1)
        notes.append("channels-first (N, C, H, W) moved to (N, H, W, C)")
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise DataError(f"{what}: images must be shaped (N, H, W) grey or (N, H, W, C) with C = "
                        f"1 (grey), 3 (RGB) or 4 (RGBA), got shape {x.shape}. A model can only "
                        f"be fed grey or colour images: convert the data first")
    if len(x) == 0:
        raise DataError(f"{what}: no images (empty array)")
    x, note = _to_uint8(x, what)
    if note:
        notes.append(note)
    if x.ndim == 4:
        if x.shape[-1] == 4:
            x = x[..., :3]
            notes.append("alpha channel dropped")
        elif x.shape[-1] == 1:
            x = x[..., 0]
    x = _set_channels(x, channels)
    h, w = x.shape[1:3]
    if size is not None and (h, w) != (size, size):
        x = np.stack([np.asarray(resize_crop(_pil(img), size)) for img in x])
        notes.append(f"resized from {h}x{w} to {size}x{size}: {RESIZE_METHOD}")
    elif h != w:
        raise DataError(f"{what}: images are {h}x{w} (height x width), not square. Fix: set the "
                        f"dataset's `size` param (e.g. size: {min(h, w)}) to resize the shorter "
                        f"side and centre-crop")
    return np.ascontiguousarray(x), notes


def _set_channels(x: np.ndarray, channels: int | None) -> np.ndarray:
    if channels == 3 and x.ndim == 3:
        return np.repeat(x[..., None], 3, axis=-1)
    if channels == 1 and x.ndim == 4:
        from .formats import to_grey

        return np.stack([to_grey(img) for img in x])
    return x


def _pil(img: np.ndarray):
    from PIL import Image

    return Image.fromarray(img)


def resize_crop(img, size: int):
    """PIL image → shorter side ``size`` (bilinear), centre crop ``size`` x ``size``."""
    from PIL import Image

    w, h = img.size
    if (w, h) == (size, size):
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


# --------------------------------------------------------------------------------- image files
def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def read_image(path: Path, size: int | None = None) -> np.ndarray:
    """One image file → uint8 (H, W) grey or (H, W, 3) RGB; unreadable files name themselves."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
                img = Image.fromarray(np.rint(arr * (255.0 / hi)).clip(0, 255).astype(np.uint8))
            elif mode == "F":
                raise DataError(f"{path}: 32-bit float image; save it as 8-bit PNG/JPEG")
            elif mode in ("1", "L", "LA"):
                img = img.convert("L")
            elif mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB").convert("RGB")
            else:  # RGB, RGBA, CMYK, YCbCr, LAB, HSV, ...
                img = img.convert("RGB")
            if size is not None:
                img = resize_crop(img, size)
            return np.asarray(img, dtype=np.uint8).copy()
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"cannot read image {path}: {e}. Fix: replace or remove the file "
                        f"(it is corrupt or not an image)") from None


def stack_images(images: list[np.ndarray], files: list[Path], what: str,
                 channels: int | None) -> tuple[np.ndarray, list[str]]:
    """Decoded images → one uint8 array; grey is repeated to RGB when the set mixes both."""
    notes = []
    if channels is None:
        colour = sum(img.ndim == 3 for img in images)
        channels = 3 if colour else 1
        if 0 < colour < len(images):
            notes.append(f"{len(images) - colour} grey images repeated to RGB to match the "
                         f"{colour} colour images")
    images = [img[..., None].repeat(3, -1) if channels == 3 and img.ndim == 2
              else _set_channels(img[None], 1)[0] if channels == 1 and img.ndim == 3
              else img for img in images]
    shapes = {img.shape[:2] for img in images}
    if len(shapes) > 1 or any(h != w for h, w in shapes):
        examples = {}
        for img, f in zip(images, files):
            examples.setdefault(img.shape[:2], f)
            if len(examples) >= 3:
                break
        listed = "; ".join(f"{f} is {h}x{w}" for (h, w), f in examples.items())
        problem = (f"found {len(shapes)} sizes" if len(shapes) > 1
                   else "the images are not square")
        raise DataError(f"{what}: images must all be square and of one size to be stacked; "
                        f"{problem} (height x width: {listed}). Fix: set the dataset's `size` "
                        f"param (e.g. size: 32) to resize the shorter side and centre-crop")
    return np.ascontiguousarray(np.stack(images)), notes
