"""Datasets that stream: a prepared image folder kept as a list of its files, not decoded pixels.

ImageNet-1k's training set decoded into one uint8 array would be ~190 GB; with ``store: files`` an
``image_folder`` dataset is prepared as a list instead -- relative paths (UTF-8), labels, each
file's size in bytes, the class names and the folder's manifest digest -- in the same
``resources/data/<name>.npz`` (no pickles), and every stage that runs the network decodes it batch
by batch in parallel workers (:mod:`grood.net.loader`).  A file changed or removed after preparation is
an error naming it, never a silently different image.

Decoding is what the ``npz`` store does when it prepares the folder (:func:`grood.data.pixels.
read_image`, ``size`` and ``channels`` applied per image), so both stores give the same images.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import DataError
from .pixels import RESIZE_METHOD, read_image


def folder_manifest(path: str | os.PathLike) -> str:
    """A digest of every file below ``path``: relative path, size and mtime (16 hex digits).

    The prepare rule's param for an image folder (a folder cannot be a Snakemake input), so adding,
    removing or editing an image rebuilds the dataset; a file list records it too.
    """
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _utf8(paths: list[str]) -> np.ndarray:
    """Relative paths as a fixed-width bytes array (UTF-8): compact, and saved without pickles."""
    return np.array([p.encode("utf-8") for p in paths], dtype=bytes)


def file_list_arrays(lists: dict[str, tuple[list[Path], np.ndarray]], meta: dict, p: dict) -> dict:
    """What :func:`grood.data.build_dataset` returns for an image folder with ``store: files``:
    ``files_<split>``, ``bytes_<split>``, ``y_<split>`` and meta (counts, label counts, manifest)."""
    root = Path(p["path"])
    out, counts, label_counts = {}, {}, {}
    for split, (files, y) in lists.items():
        out[f"files_{split}"] = _utf8([f.relative_to(root).as_posix() for f in files])
        out[f"bytes_{split}"] = np.array([f.stat().st_size for f in files], dtype=np.int64)
        out[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.int64)
        counts[split] = len(files)
        labels, n = np.unique(y, return_counts=True)
        label_counts[split] = {str(int(k)): int(v) for k, v in zip(labels, n)}
    meta = {**meta, "store": "files", "manifest": folder_manifest(root), "splits": list(lists),
            "counts": counts, "label_counts": label_counts, "shapes": {},
            "notes": "a file list (store: files): images are decoded with PIL where they are read, "
                     "batch by batch in parallel workers; grey kept grey, everything else RGB"
                     + (f"; resize: {RESIZE_METHOD}" if p["size"] else "")}
    return {**out, "meta": meta}


@dataclass(frozen=True)
class ImageFiles:
    """The images of a file-list split, read lazily: ``len``, slicing and index arrays like a
    uint8 image array, :meth:`read` to decode one; ``workers`` is how many processes the forward
    pass decodes with (results do not depend on it)."""

    root: str
    files: np.ndarray           # UTF-8 relative paths (bytes)
    nbytes: np.ndarray          # size of each file when the list was made
    size: int | None = None     # the dataset's `size` param: shorter side + centre crop, as npz
    channels: int | None = None  # the dataset's `channels` param (1 or 3; None: as decoded)
    workers: int = 0
    name: str = "images"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index) -> "ImageFiles":
        if isinstance(index, (int, np.integer)):
            raise TypeError("ImageFiles[i] would be one image: use .read(i); slices and index "
                            "arrays give ImageFiles")
        return replace(self, files=self.files[index], nbytes=self.nbytes[index])

    def path(self, i: int) -> str:
        return os.path.join(self.root, self.files[i].decode("utf-8"))

    def read(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 (H, W) or (H, W, 3), as the npz store would hold it."""
        path = self.path(i)
        try:
            found = os.stat(path).st_size
        except FileNotFoundError:
            raise DataError(f"{path} is in the file list of {self.name} but no longer exists. Fix: "
                            f"restore it, or run snakemake again: the folder's manifest changed, so "
                            f"the dataset is prepared anew") from None
        if found != int(self.nbytes[i]):
            raise DataError(f"{path} changed since {self.name} was prepared ({found} bytes, listed "
                            f"with {int(self.nbytes[i])}). Fix: run snakemake again (the dataset is "
                            f"prepared anew and everything computed from it re-runs)")
        img = read_image(Path(path), self.size)
        if self.channels == 3 and img.ndim == 2:
            return np.repeat(img[..., None], 3, axis=-1)
        if self.channels == 1 and img.ndim == 3:
            from .formats import to_grey

            return to_grey(img)
        return img


def file_list_split(arrays: dict, meta: dict, split: str, workers: int, name: str) -> tuple[ImageFiles, np.ndarray]:
    """(ImageFiles, labels) of ``split`` from a prepared file list's arrays and meta."""
    params = meta.get("params", {})
    files = arrays[f"files_{split}"]
    images = ImageFiles(root=meta["path"], files=files, nbytes=arrays[f"bytes_{split}"],
                        size=params.get("size"), channels=params.get("channels"),
                        workers=int(workers or 0), name=name)
    labels = arrays.get(f"y_{split}", np.full(len(files), -1, dtype=np.int64))
    return images, labels
