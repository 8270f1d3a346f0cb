"""A user's own arrays as a data source: one ``.npz`` file.

Keys, either form (arrays saved with ``np.savez``; no pickles are loaded):

* ``images`` [+ ``labels``]: one set, used as the test split (an OOD set);
* ``x_test`` [+ ``y_test``] and optionally ``x_train`` + ``y_train``: an ID set too.

Images: (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4; uint8 0..255, integers
0..255 or floats in [0, 1]. Labels: integers >= 0, or -1 for "no label". An optional
``class_names`` array of strings names the labels. ``size`` / ``channels`` as for image folders.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError
from .fetch import sha256_file
from .ondisk import SPLITS
from .pixels import as_images, choice, optional_int, user_path

LAYOUT = ("an .npz (np.savez) with `images` [+ `labels`], or `x_test` [+ `y_test`] and "
          "optionally `x_train` + `y_train`; images uint8 (N, H, W) or (N, H, W, 3)")


def check_npz(p: dict, source: str) -> None:
    p["path"] = user_path(p["path"], source)
    choice(p, "split", SPLITS, source)
    optional_int(p, "size", source, 1)
    choice(p, "channels", (None, 1, 3), source)


def _labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what}: labels must be one integer per image ({n}), got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or
            (np.issubdtype(y.dtype, np.floating) and np.array_equal(y, np.rint(y)))):
        raise DataError(f"{what}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < -1:
        raise DataError(f"{what}: labels must be >= 0 (or -1 for 'no label'), found {y.min()}")
    return y


def build_npz(p: dict, raw_dir: Path) -> dict:
    path = Path(p["path"])
    if not path.is_file():
        raise DataError(f"source 'npz': no file {path}. Expected {LAYOUT}. Fix: set `path` to "
                        f"the .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz without pickles ({type(e).__name__}: {e}). "
                        f"Expected {LAYOUT}. Fix: save with np.savez(path, images=..., "
                        f"labels=...) from plain arrays") from None
    keys = set(arrays)
    if "images" in keys and keys & {"x_train", "x_test"}:
        raise DataError(f"{path}: holds both `images` and `x_train`/`x_test`; use one form. "
                        f"Expected {LAYOUT}")
    if "images" in keys:
        sets = {"test": ("images", "labels")}
    elif "x_test" in keys:
        sets = {"test": ("x_test", "y_test")}
        if "x_train" in keys and p["split"] == "all":
            if "y_train" not in keys:
                raise DataError(f"{path}: `x_train` needs `y_train` (a training split needs "
                                f"labels)")
            sets = {"train": ("x_train", "y_train"), **sets}
    else:
        raise DataError(f"{path}: no `images` or `x_test` array (found {sorted(keys)}). "
                        f"Expected {LAYOUT}")
    out, notes = {}, []
    for s, (xk, yk) in sets.items():
        what = f"{path} [{xk}]"
        x, n = as_images(arrays[xk], what, p["size"], p["channels"])
        y = _labels(arrays[yk], len(x), f"{path} [{yk}]") if yk in arrays \
            else np.full(len(x), -1, np.int64)
        out[f"x_{s}"], out[f"y_{s}"] = x, y
        notes += [f"{xk}: {m}" for m in n]
    if "train" in out and (out["y_train"] < 0).any():
        raise DataError(f"{path}: every training image needs a label >= 0 (found -1)")
    shapes = {out[k].shape[1:] for k in out if k.startswith("x_")}
    if len(shapes) > 1:
        raise DataError(f"{path}: train and test images differ in shape {sorted(shapes)}; set "
                        f"`size` (and `channels`) to make them alike")
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else []
    return {**out, "meta": {"upstream": [{"kind": "user file", "file": str(path),
                                          "sha256": sha256_file(path)}],
                            "path": str(path), "class_names": names,
                            "notes": "; ".join(notes) or "arrays used as stored"}}
