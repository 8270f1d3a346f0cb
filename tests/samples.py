"""Tiny stand-ins written in the standard on-disk formats, to try and test the CIFAR/SVHN path.

The real CIFAR-10/100 and SVHN files cannot be had on an offline machine (docs/data.md). These
writers produce files in exactly their layouts -- pickled dicts with the real keys, MATLAB files
with ``X`` (32, 32, 3, N) and ``y`` -- filled with class-dependent colour patterns that a small
network learns in one epoch. Nothing here is real data; ``meta.official`` says so (md5 differs).

    from samples import write_cifar10
    write_cifar10("data", n_train=200, n_test=60)   # → data/cifar-10-batches-py/...
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from grood.data.ondisk import CIFAR10_CLASSES, CIFAR10_LAYOUT, CIFAR100_COARSE, CIFAR100_FINE, CIFAR100_LAYOUT


def patterns(n: int, num_classes: int = 10, size: int = 32, seed: int = 0, channels: int = 3,
             offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size[, 3]) images and labels 0..num_classes-1 (balanced, shuffled).

    Class k: a hue and a stripe orientation/frequency of its own (shifted by ``offset``, so two
    sets with different offsets look different), plus per-image phase and pixel noise.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    k = (y + offset).astype(np.float64)[:, None, None]
    r, c = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    angle = np.pi * (k % 4) / 4
    freq = 2 * np.pi * (1 + k % 3) / 8
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    stripes = 0.5 + 0.5 * np.sin(freq * (np.cos(angle) * r + np.sin(angle) * c) + phase)
    hue = 2 * np.pi * (k * 0.6180339887 % 1.0)
    colour = np.stack([0.5 + 0.5 * np.cos(hue + s) for s in (0, 2.094, 4.189)], -1)
    img = stripes[..., None] * colour + rng.normal(0, 0.08, (n, size, size, 3))
    x = np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if channels == 1:
        from grood.data.formats import to_grey

        x = np.stack([to_grey(i) for i in x])
    return x, y


def _cifar_rows(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))


def _dump(obj, path: Path, protocol: int) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def write_cifar10(root, n_train: int = 200, n_test: int = 60, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with data_batch_1..5, test_batch, batches.meta (protocol 2,
    bytes keys b'data', b'labels', b'batch_label', b'filenames' as in the real files)."""
    folder = Path(root) / CIFAR10_LAYOUT["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    x, y = patterns(n_train + n_test, 10, seed=seed)
    parts = np.array_split(np.arange(n_train), 5)
    for i, idx in enumerate(parts, 1):
        _dump({b"batch_label": f"training batch {i} of 5".encode(), b"labels": y[idx].tolist(),
               b"data": _cifar_rows(x[idx]),
               b"filenames": [f"img_{j}.png".encode() for j in idx]},
              folder / f"data_batch_{i}", 2)
    t = np.arange(n_train, n_train + n_test)
    _dump({b"batch_label": b"testing batch 1 of 1", b"labels": y[t].tolist(),
           b"data": _cifar_rows(x[t]), b"filenames": [f"img_{j}.png".encode() for j in t]},
          folder / "test_batch", 2)
    _dump({b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in CIFAR10_CLASSES],
           b"num_vis": 3072}, folder / "batches.meta", 2)
    return folder


def write_cifar100(root, n_train: int = 200, n_test: int = 60, seed: int = 1) -> Path:
    """``root/cifar-100-python`` with train, test, meta (fine and coarse labels)."""
    folder = Path(root) / CIFAR100_LAYOUT["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    x, y = patterns(n_train + n_test, 100, seed=seed, offset=10)
    splits = (("train", np.arange(n_train)), ("test", np.arange(n_train, n_train + n_test)))
    for name, idx in splits:
        _dump({b"filenames": [f"img_{j}.png".encode() for j in idx], b"batch_label": name.encode(),
               b"fine_labels": y[idx].tolist(), b"coarse_labels": (y[idx] // 5).tolist(),
               b"data": _cifar_rows(x[idx])}, folder / name, pickle.HIGHEST_PROTOCOL)
    _dump({b"fine_label_names": [n.encode() for n in CIFAR100_FINE],
           b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE]}, folder / "meta",
          pickle.HIGHEST_PROTOCOL)
    return folder


def write_svhn(root, n_train: int = 100, n_test: int = 60, seed: int = 2) -> Path:
    """``root/{train,test}_32x32.mat``: X uint8 (32, 32, 3, N), y uint8 (N, 1) in 1..10."""
    from scipy.io import savemat

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    x, y = patterns(n_train + n_test, 10, seed=seed, offset=3)
    y_mat = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
    for name, sl in (("train", slice(0, n_train)), ("test", slice(n_train, None))):
        savemat(root / f"{name}_32x32.mat", {"X": np.moveaxis(x[sl], 0, 3), "y": y_mat[sl]})
    return root


def write_image_folder(root, n_per_class: int = 5, classes: tuple[str, ...] | None = ("a", "b"),
                       size: int | tuple[int, int] = 32, grey: bool = False, seed: int = 3,
                       ext: str = ".png") -> Path:
    """PNG (or ``ext``) files in class subfolders (``classes``) or flat (``classes=None``)."""
    from PIL import Image

    root = Path(root)
    h, w = (size, size) if isinstance(size, int) else size
    k = len(classes) if classes else 1
    x, y = patterns(n_per_class * k, k, max(h, w), seed, 1 if grey else 3, offset=5)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / classes[label] if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(img[:h, :w])).save(folder / f"{i:05d}{ext}")
    return root


def write_photo_folder(root, classes: tuple[str, ...] | None = ("n01", "n02", "n03"),
                       n_per_class: int = 4, splits: tuple[str, ...] = ("train", "val"),
                       sizes: tuple[int, int] = (40, 90), seed: int = 4) -> Path:
    """An ImageNet-like class-folder tree: ``root/<split>/<class>/*`` (or flat when ``classes`` is
    None, or without split folders when ``splits`` is empty) of JPEG and PNG files of mixed sizes,
    a third of them grey -- what decoding and the shorter-side recipe must cope with."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    names = classes or ("",)
    for split in splits or ("",):
        for k, c in enumerate(names):
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                h, w = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, 2))
                x, _ = patterns(1, len(names), max(h, w), seed=int(rng.integers(2**31)), offset=k)
                img = Image.fromarray(np.ascontiguousarray(x[0, :h, :w]))
                if i % 3 == 2:
                    img = img.convert("L")
                if i % 2:
                    img.save(folder / f"img{i:03d}.JPEG", quality=90)
                else:
                    img.save(folder / f"img{i:03d}.png")
    return root
