"""OpenOOD's image lists as a data source (``source: imglist``).

OpenOOD (v1.5, the protocol GROOD's ImageNet numbers follow) defines every benchmark set by a text
file in ``benchmark_imglist/<benchmark>/``: one image per line, its path relative to a data folder
(``images_largescale/`` for ImageNet), a space, and its label — an integer (``-1`` for OOD images)
or a Python dict literal with a ``label`` key, as OpenOOD's own ``ImglistDataset`` reads it::

    ssb_hard/n11622368/n11622368_1063.JPEG -1
    imagenet_1k/val/ILSVRC2012_val_00000001.JPEG 65

Params: ``path`` (the list: the test split), ``root`` (the folder its paths are relative to),
``train`` (optional second list: a training split, labels ≥ 0), ``store`` (``files``, the default:
a file list decoded batch by batch where it is read, :mod:`grood.data.filelist`; ``npz``: decoded
into the prepared file), ``size`` / ``channels`` as for image folders, and the common ``classes`` /
``max_train`` / ``max_test``.  Preparing checks that every listed file exists (one ``stat`` each) and
records its size, so a file changed later is an error where it is read; the list files are inputs
of the prepare rule, so a new list rebuilds the set.  The images' labels are the lists' own.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .pixels import choice, optional_int, read_image, stack_images, user_path

#: how a list line looks (errors show it)
LINE = "`<path relative to root> <label>` (label: an integer, -1 for OOD, or {'label': ...})"
STORES = ("files", "npz")


def check_imglist(p: dict, source: str) -> None:
    p["path"] = user_path(p["path"], source)
    p["root"] = user_path(p["root"], source, "root")
    if p["train"] is not None:
        p["train"] = user_path(p["train"], source, "train")
    choice(p, "store", STORES, source)
    optional_int(p, "size", source, 1)
    choice(p, "channels", (None, 1, 3), source)


def parse_label(extra: str, where: str) -> int:
    """The label of one list line's text after the path: an integer, or a dict literal's ``label``."""
    text = extra.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)  # literals only: never code
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("label"), (int, np.integer)) \
            and not isinstance(value.get("label"), bool):
        return int(value["label"])
    raise DataError(f"{where}: label {text!r} is neither an integer nor a dict with an integer 'label'; "
                    f"each line is {LINE}")


def read_list(list_file: str | Path, root: str | Path) -> tuple[list[str], np.ndarray]:
    """(relative paths, int64 labels) of an image list; every listed file must exist below ``root``."""
    list_file, root = Path(list_file), Path(root)
    if not list_file.is_file():
        raise DataError(f"source 'imglist': no list file {list_file}. Fix: point `path` (or `train`) at "
                        f"OpenOOD's benchmark_imglist/<benchmark>/<set>.txt, or your own list of {LINE}")
    if not root.is_dir():
        raise DataError(f"source 'imglist': root {root} is not a folder. Fix: set `root` to the folder the "
                        f"list's paths are relative to (OpenOOD's ImageNet lists: images_largescale/)")
    paths, labels = [], []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{list_file}:{number}"
        rel, sep, extra = line.strip().partition(" ")
        if not sep or not extra.strip():
            raise DataError(f"{where}: {line.strip()!r} has no label; each line is {LINE}")
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise DataError(f"{where}: {rel!r} is not a path below root (absolute or with '..'); "
                            f"each line is {LINE}")
        paths.append(rel)
        labels.append(parse_label(extra, where))
    if not paths:
        raise DataError(f"source 'imglist': {list_file} lists no image; each line is {LINE}")
    missing = [r for r in paths if not (root / r).is_file()]
    if missing:
        raise DataError(f"source 'imglist': {len(missing)} of the {len(paths)} images listed in {list_file} are "
                        f"not below {root} (first: {root / missing[0]}). Fix: set `root` to the folder the "
                        f"list's paths start in, or fetch the missing images")
    return paths, np.asarray(labels, dtype=np.int64)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_imglist(p: dict, raw_dir: Path) -> dict:
    from .ondisk import subset_lists

    root = Path(p["root"])
    lists_in = {"test": Path(p["path"]), **({"train": Path(p["train"])} if p["train"] else {})}
    read = {}
    for split, list_file in lists_in.items():
        rel, y = read_list(list_file, root)
        if split == "train" and (y < 0).any():
            raise DataError(f"source 'imglist': the training list {list_file} has images without a class "
                            f"label (-1); a training split needs labels ≥ 0")
        read[split] = (rel, y)
    lists, upstream_counts = subset_lists(read, p, "imglist", lambda split: f"of {lists_in[split]}")
    upstream = [{"kind": "image list", "file": str(f), "sha256": _digest(f), "root": str(root)}
                for f in lists_in.values()]
    meta = {"upstream": upstream, "path": str(root), "class_names": [], "upstream_counts": upstream_counts,
            "layout": "image list(s) (OpenOOD benchmark_imglist format) below root"}
    if p["store"] == "files":
        from .filelist import _utf8

        out, counts, label_counts = {}, {}, {}
        for split, (rel, y) in lists.items():
            out[f"files_{split}"] = _utf8(rel)
            out[f"bytes_{split}"] = np.array([(root / r).stat().st_size for r in rel], dtype=np.int64)
            out[f"y_{split}"] = np.ascontiguousarray(y, dtype=np.int64)
            counts[split] = len(rel)
            labels, n = np.unique(y, return_counts=True)
            label_counts[split] = {str(int(k)): int(v) for k, v in zip(labels, n)}
        meta.update(store="files", splits=list(lists), counts=counts, label_counts=label_counts, shapes={},
                    notes="a file list (store: files) from image list(s): images are decoded with PIL where "
                          "they are read, batch by batch in parallel workers; grey kept grey, else RGB")
        return {**out, "meta": meta}
    out, notes = {}, []
    for split, (rel, y) in lists.items():
        files = [root / r for r in rel]
        x, n = stack_images([read_image(f, p["size"]) for f in files], files, f"image list {lists_in[split]}",
                            p["channels"])
        out[f"x_{split}"], out[f"y_{split}"] = x, y
        notes += n
    meta["notes"] = "; ".join(["images decoded with PIL from image list(s)", *notes])
    return {**out, "meta": meta}


__all__ = ["LINE", "build_imglist", "check_imglist", "parse_label", "read_list"]
