"""Standard image sets read from the user's disk: CIFAR-10/100 pickles, SVHN .mat, image folders.

None of these can be fetched here (see docs/data.md); users with the files point ``path`` at them:

* ``cifar10``: ``<path>/cifar-10-batches-py/{data_batch_1..5,test_batch[,batches.meta]}``
  (``path`` may also be the ``cifar-10-batches-py`` folder itself);
* ``cifar100``: ``<path>/cifar-100-python/{train,test[,meta]}``; fine (100) or coarse (20) labels;
* ``svhn``: ``<path>/{train_32x32.mat,test_32x32.mat}``; label 10 is the digit 0;
* ``image_folder``: class subfolders (sorted names → labels 0..K-1, images anywhere below them),
  or a flat folder of images (no labels), optionally split into ``train/`` and ``test/`` (or
  ``val/``) subfolders. ``store: npz`` (default) decodes every image into the prepared file;
  ``store: files`` keeps a list of the files instead, decoded where they are read
  (:mod:`grood.data.filelist`) -- for folders too large to hold decoded (ImageNet-1k).

We read the files ourselves rather than through torchvision's ``CIFAR10``/``SVHN`` classes: those
accept only files whose md5 matches the official release (so no small test copies) and unpickle
with the unrestricted ``pickle`` module. The pickles here go through a numpy-only unpickler.
The md5 of every standard file is still compared with torchvision's list and recorded in
``meta`` (``official: true/false``). ``download: true`` fills an empty ``path`` with
torchvision's ``download=True`` when the network allows -- in a subprocess, time-bounded, after a
quick reachability probe, so an offline machine fails in seconds with the manual fix.
"""
from __future__ import annotations

import hashlib
import io
import logging
import pickle
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from .errors import DataError
from .fetch import DOWNLOAD_TIMEOUT_S, _run, cache_lock
from .formats import _NumpyOnlyUnpickler
from .pixels import (RESIZE_METHOD, as_images, choice, is_image_file, optional_int, read_image,
                     stack_images, user_path)
from .subset import stratified_indices

log = logging.getLogger("grood.data")

SPLITS = ("all", "test")  # the `split` param: every split the files hold, or the test split only
#: an image folder's `store`: decoded pixels in the prepared .npz, or a list of its files
STORES = ("npz", "files")
LARGE_FOLDER = 200_000  # images above which decoding a folder into one array earns a warning


# --------------------------------------------------------------------------------------------
# layouts: what the files are, where they come from, their official md5 (torchvision's lists)
# --------------------------------------------------------------------------------------------
CIFAR10_LAYOUT = {
    "folder": "cifar-10-batches-py",
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
    "meta": "batches.meta",
    "archive": "cifar-10-python.tar.gz",
    "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "torchvision": "CIFAR10",
}
CIFAR100_LAYOUT = {
    "folder": "cifar-100-python",
    "train": ["train"],
    "test": ["test"],
    "meta": "meta",
    "archive": "cifar-100-python.tar.gz",
    "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "torchvision": "CIFAR100",
}
SVHN_LAYOUT = {
    "train": ["train_32x32.mat"],
    "test": ["test_32x32.mat"],
    "url": "http://ufldl.stanford.edu/housenumbers/",
    "torchvision": "SVHN",
}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
CIFAR100_COARSE = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2")
CIFAR100_FINE = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
wardrobe whale willow_tree wolf woman worm""".split())
assert len(CIFAR100_FINE) == 100 and len(CIFAR100_COARSE) == 20


def official_md5(torchvision_class: str) -> dict[str, str]:
    """file name → md5 of the official release, from torchvision's own lists ({} if absent)."""
    try:
        from torchvision import datasets
    except ImportError:
        return {}
    cls = getattr(datasets, torchvision_class)
    if torchvision_class == "SVHN":
        return {f: m for _, f, m in cls.split_list.values()}
    return {f: m for f, m in cls.train_list + cls.test_list + [[cls.meta["filename"],
                                                                 cls.meta["md5"]]]}


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_record(path: Path, official: dict[str, str]) -> dict:
    md5 = _md5(path)
    rec = {"kind": "user file", "file": str(path), "bytes": path.stat().st_size, "md5": md5}
    if path.name in official:
        rec["official"] = md5 == official[path.name]
    return rec


# --------------------------------------------------------------------------------------------
# torchvision download=True (only where the network allows)
# --------------------------------------------------------------------------------------------
PROBE_TIMEOUT_S = 10


def _probe(url: str) -> str | None:
    """None if ``url``'s host accepts a TCP connection within PROBE_TIMEOUT_S, else why not."""
    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname, port), PROBE_TIMEOUT_S).close()
        return None
    except OSError as e:
        return f"{u.hostname}:{port} is unreachable ({e})"


def torchvision_download(layout: dict, root: Path, splits: list[str], source: str,
                         expected: str) -> None:
    """Fill ``root`` with torchvision's ``download=True``; DataError naming the manual fix."""
    manual = (f"Fix: on a machine with internet, download {layout['url']}"
              f"{'' if layout['url'].endswith('.gz') else '{train,test}_32x32.mat'}, copy it here "
              f"and extract/place it so that {expected}")
    why = _probe(layout["url"])
    if why:
        raise DataError(f"source {source!r}: `download: true` but {why}: this machine is "
                        f"offline (only package registries reachable?). {manual}")
    root.mkdir(parents=True, exist_ok=True)
    cls = layout["torchvision"]
    calls = "; ".join(
        f"d.SVHN(r, split={s!r}, download=True)" if cls == "SVHN"
        else f"d.{cls}(r, train={s == 'train'}, download=True)" for s in splits)
    code = f"import torchvision.datasets as d; r = {str(root)!r}; {calls}"
    with cache_lock(root, cls.lower()):
        log.info("downloading %s with torchvision into %s (at most %d s)", cls, root,
                 DOWNLOAD_TIMEOUT_S)
        ok, reason = _run([sys.executable, "-c", code])
    if not ok:
        raise DataError(f"source {source!r}: torchvision could not download {cls} into {root}: "
                        f"{reason}. Set GROOD_DOWNLOAD_TIMEOUT (seconds, now "
                        f"{DOWNLOAD_TIMEOUT_S}) for slow links. {manual}")


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100: python pickles of {b'data': uint8 (N, 3072), b'labels': [...], ...}
# --------------------------------------------------------------------------------------------
class _CifarUnpickler(_NumpyOnlyUnpickler):
    """Numpy-only unpickler that also accepts ``_codecs.encode`` (bytes in protocol-2 pickles)
    and numpy's ``_frombuffer`` (arrays in protocol-5 pickles)."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            import codecs

            return codecs.encode
        if (module, name) in (("numpy._core.numeric", "_frombuffer"),
                              ("numpy.core.numeric", "_frombuffer")):
            return _frombuffer
        return super().find_class(module, name)


def _frombuffer(buf, dtype, shape, order):
    """What numpy's own ``_frombuffer`` does: an array over a pickled buffer."""
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _load_cifar_pickle(path: Path, expected: str) -> dict:
    try:
        with open(path, "rb") as fh:
            d = _CifarUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as e:
        raise DataError(f"{path}: not a readable CIFAR batch ({type(e).__name__}: {e}). Expected "
                        f"{expected}. Fix: extract the official archive again") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: a CIFAR batch is a pickled dict, found {type(d).__name__}. "
                        f"Expected {expected}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}


def _cifar_root(path: Path, layout: dict) -> Path:
    return path if (path / layout["test"][0]).exists() or path.name == layout["folder"] \
        else path / layout["folder"]


def _read_cifar(p: dict, layout: dict, label_key: str, source: str) -> tuple[dict, list, Path]:
    path = Path(p["path"])
    root = _cifar_root(path, layout)
    splits = ["train", "test"] if p["split"] == "all" else ["test"]
    expected = (f"{path}/{layout['folder']}/ holds "
                f"{', '.join(layout['train'] + layout['test'])} (the extracted "
                f"{layout['archive']} from {layout['url']})")
    needed = [root / f for s in splits for f in layout[s]]
    if not any(f.exists() for f in needed) and p["download"]:
        torchvision_download(layout, path, splits, source, expected)
        root = path / layout["folder"]
        needed = [root / f for s in splits for f in layout[s]]
    missing = [f for f in needed if not f.is_file()]
    if missing:
        hint = "" if p["download"] else (" or set `download: true` where the machine has "
                                         "internet")
        raise DataError(f"source {source!r}: missing {missing[0]}"
                        f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}. "
                        f"Expected layout: {expected}. Fix: extract the archive into {path}"
                        f"{hint}")
    official = official_md5(layout["torchvision"])
    out, upstream = {}, []
    for s in splits:
        xs, ys = [], []
        for f in layout[s]:
            d = _load_cifar_pickle(root / f, expected)
            for key in ("data", label_key):
                if key not in d:
                    raise DataError(f"{root / f}: no {key!r} entry (keys: {sorted(d)}); not a "
                                    f"{source} batch. Expected {expected}")
            x, y = np.asarray(d["data"]), np.asarray(d[label_key])
            if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
                raise DataError(f"{root / f}: 'data' must be uint8 (N, 3072) with one label per "
                                f"row, got {x.dtype}{x.shape} and {len(y)} labels")
            xs.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(y.astype(np.int64).reshape(-1))
            upstream.append(_file_record(root / f, official))
        out[f"x_{s}"] = np.ascontiguousarray(np.concatenate(xs))
        out[f"y_{s}"] = np.concatenate(ys)
    return out, upstream, root


def _check_labels(out: dict, n_classes: int, what: str) -> None:
    for k in [k for k in out if k.startswith("y_")]:
        y = out[k]
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DataError(f"{what}: labels must lie in 0..{n_classes - 1}, found "
                            f"{y.min()}..{y.max()} in the {k[2:]} split")


def _meta_names(root: Path, layout: dict, key: str, default: tuple, expected: str) -> list[str]:
    f = root / layout["meta"]
    if not f.is_file():
        return list(default)
    names = _load_cifar_pickle(f, expected).get(key)
    if names is None or len(names) != len(default):
        return list(default)
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


def build_cifar10(p: dict, raw_dir: Path) -> dict:
    out, upstream, root = _read_cifar(p, CIFAR10_LAYOUT, "labels", "cifar10")
    _check_labels(out, 10, f"cifar10 at {root}")
    names = _meta_names(root, CIFAR10_LAYOUT, "label_names", CIFAR10_CLASSES, str(root))
    return {**out, "meta": {"upstream": upstream, "class_names": names, "path": str(root),
                            "notes": "CIFAR-10 python batches: rows of 3072 bytes (R, G, B "
                                     "planes of 32x32) reshaped to (N, 32, 32, 3); train = "
                                     "data_batch_1..5 in order"}}


def build_cifar100(p: dict, raw_dir: Path) -> dict:
    key = "fine_labels" if p["label_mode"] == "fine" else "coarse_labels"
    out, upstream, root = _read_cifar(p, CIFAR100_LAYOUT, key, "cifar100")
    default = CIFAR100_FINE if p["label_mode"] == "fine" else CIFAR100_COARSE
    _check_labels(out, len(default), f"cifar100 at {root}")
    names = _meta_names(root, CIFAR100_LAYOUT, f"{p['label_mode']}_label_names", default,
                        str(root))
    return {**out, "meta": {"upstream": upstream, "class_names": names, "path": str(root),
                            "notes": f"CIFAR-100 python pickles, {key} ({len(default)} "
                                     f"classes); rows of 3072 bytes reshaped to (N, 32, 32, 3)"}}


def check_cifar100(p: dict, source: str) -> None:
    check_ondisk(p, source)
    choice(p, "label_mode", ("fine", "coarse"), source)
    n = 100 if p["label_mode"] == "fine" else 20
    bad = [c for c in p["classes"] or [] if c >= n]
    if bad:
        raise DataError(f"param 'classes' of source {source!r}: no label {bad[0]} with "
                        f"label_mode {p['label_mode']!r}; labels are 0..{n - 1}")


def check_ondisk(p: dict, source: str) -> None:
    p["path"] = user_path(p["path"], source)
    choice(p, "split", SPLITS, source)
    if "download" in p and not isinstance(p["download"], bool):
        raise DataError(f"param 'download' of source {source!r} must be true or false, "
                        f"got {p['download']!r}")


# --------------------------------------------------------------------------------------------
# SVHN: MATLAB files with X uint8 (32, 32, 3, N) and y (N, 1) in 1..10 (10 = digit 0)
# --------------------------------------------------------------------------------------------
def build_svhn(p: dict, raw_dir: Path) -> dict:
    from scipy.io import loadmat

    path = Path(p["path"])
    splits = ["train", "test"] if p["split"] == "all" else ["test"]
    expected = (f"{path}/ holds {', '.join(f for s in splits for f in SVHN_LAYOUT[s])} (the "
                f"cropped-digits 'Format 2' files from {SVHN_LAYOUT['url']})")
    needed = [path / f for s in splits for f in SVHN_LAYOUT[s]]
    if not any(f.exists() for f in needed) and p["download"]:
        torchvision_download(SVHN_LAYOUT, path, splits, "svhn", expected)
    missing = [f for f in needed if not f.is_file()]
    if missing:
        hint = "" if p["download"] else (" or set `download: true` where the machine has "
                                         "internet")
        raise DataError(f"source 'svhn': missing {missing[0]}. Expected layout: {expected}. "
                        f"Fix: put the .mat files there{hint}")
    official = official_md5("SVHN")
    out, upstream = {}, []
    for s in splits:
        f = path / SVHN_LAYOUT[s][0]
        try:
            mat = loadmat(f, variable_names=["X", "y"])
        except Exception as e:  # scipy raises ValueError, TypeError, MatReadError, ...
            raise DataError(f"{f}: not a readable MATLAB file ({type(e).__name__}: {e}). "
                            f"Expected {expected}. Fix: download it again") from None
        if "X" not in mat or "y" not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DataError(f"{f}: needs variables X and y, found {found}. Expected {expected}")
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
            raise DataError(f"{f}: X must be (32, 32, 3, N) with N = len(y), got X {x.shape}, "
                            f"y {len(y)}")
        y = y.astype(np.int64)
        if len(y) and (y.min() < 1 or y.max() > 10):
            raise DataError(f"{f}: labels y must lie in 1..10 (10 = digit 0), found "
                            f"{y.min()}..{y.max()}")
        y[y == 10] = 0
        x, _ = as_images(np.moveaxis(x, 3, 0), str(f))
        out[f"x_{s}"], out[f"y_{s}"] = x, y
        upstream.append(_file_record(f, official))
    return {**out, "meta": {"upstream": upstream, "path": str(path),
                            "notes": "SVHN cropped digits: X (32, 32, 3, N) moved to "
                                     "(N, 32, 32, 3); label 10 (digit 0) mapped to 0"}}


# --------------------------------------------------------------------------------------------
# image folders
# --------------------------------------------------------------------------------------------
def _images_below(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and is_image_file(f)
                  and not any(part.startswith(".") for part in f.relative_to(folder).parts))


def _collection(folder: Path) -> tuple[list[Path], list[str] | None, list[str]]:
    """Files of one folder and their class (subfolder) names, or None for a flat folder."""
    loose = sorted(f for f in folder.iterdir() if f.is_file() and is_image_file(f))
    subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if loose and subdirs:
        with_images = [d.name for d in subdirs if _images_below(d)]
        if with_images:
            raise DataError(f"{folder}: holds both image files ({loose[0].name}, ...) and "
                            f"subfolders with images ({with_images[0]}/, ...): is it a flat "
                            f"folder or a folder of class subfolders? Fix: move the loose images "
                            f"into a subfolder, or point `path` at one level")
    if loose:
        return loose, None, []
    files, classes, empty = [], [], []
    for d in subdirs:
        found = _images_below(d)
        if not found:
            empty.append(d.name)
            continue
        files += found
        classes += [d.name] * len(found)
    return files, classes, empty


def _split_folders(path: Path) -> dict[str, Path] | None:
    train = path / "train"
    test = next((path / n for n in ("test", "val") if (path / n).is_dir()), None)
    return {"train": train, "test": test} if train.is_dir() and test is not None else None


def check_image_folder(p: dict, source: str) -> None:
    p["path"] = user_path(p["path"], source)
    choice(p, "split", SPLITS, source)
    optional_int(p, "size", source, 1)
    choice(p, "channels", (None, 1, 3), source)
    choice(p, "store", STORES, source)
    f = p["test_fraction"]
    if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1):
        raise DataError(f"param 'test_fraction' of source {source!r} must be a number between 0 "
                        f"and 1 (exclusive), got {f!r}")


def subset_lists(lists: dict, p: dict, source: str, where) -> tuple[dict, dict]:
    """``({split: (files, labels) kept by classes + max_*}, {split: files before})`` of ``lists``
    (:func:`_subset_files`, in ``lists``' order); a split left empty is an error naming it and
    ``where(split)``, the files' place ("in <folder>", "of <list file>")."""
    kept, upstream_counts = {}, {}
    for split, (files, y) in lists.items():
        upstream_counts[split] = len(y)
        keep = _subset_files(files, y, p, split)
        if len(keep) == 0:
            raise DataError(f"source {source!r}: no {split} images {where(split)} are left after "
                            f"`classes`/`max_{split}`")
        kept[split] = ([files[i] for i in keep], y[keep])
    return kept, upstream_counts


def _subset_files(files: list[Path], y: np.ndarray, p: dict, split: str) -> np.ndarray:
    """The indices build_dataset's ``classes`` + ``max_*`` would keep, so only they are decoded."""
    keep = np.arange(len(y))
    if p["classes"] is not None:
        keep = keep[np.isin(y, p["classes"])]
    limit = p[f"max_{split}"]
    if limit is not None and limit < len(keep):
        keep = keep[stratified_indices(y[keep], limit, p["seed"], split)]
    return keep


def list_image_folder(p: dict) -> tuple[dict[str, tuple[list[Path], np.ndarray]], dict]:
    """The image files and labels of each split (after ``classes`` / ``max_*``), and the meta
    both stores share (class names, layout, upstream counts)."""
    path = Path(p["path"])
    layout = ("a folder of class subfolders (<path>/<class>/**/*.png|jpg|...), a flat folder of "
              "images, or either inside <path>/train/ and <path>/test/ (or val/)")
    if not path.is_dir():
        raise DataError(f"source 'image_folder': {path} is not a folder. Expected {layout}. "
                        f"Fix: set `path` to the folder that holds the images")
    split_dirs = _split_folders(path)
    if split_dirs and p["test_fraction"] is not None:
        raise DataError(f"source 'image_folder': {path} already has train/ and "
                        f"{split_dirs['test'].name}/ folders; drop `test_fraction`")
    collections = {s: _collection(d) for s, d in split_dirs.items()} if split_dirs \
        else {"test": _collection(path)}
    if p["split"] == "test":
        collections.pop("train", None)
    labelled = {s: c[1] is not None for s, c in collections.items()}
    if len(set(labelled.values())) > 1:
        raise DataError(f"source 'image_folder': in {path}, train/ has "
                        f"{'class subfolders' if labelled.get('train') else 'loose images'} but "
                        f"the test folder does not; use one layout for both")
    names = sorted({n for _, c, _ in collections.values() for n in c or []})
    lookup = {n: i for i, n in enumerate(names)}
    lists = {}
    for s, (files, classes, _) in collections.items():
        if not files:
            where = split_dirs[s] if split_dirs else path
            raise DataError(f"source 'image_folder': no images in {where} (looked for "
                            f"{', '.join(sorted({'.png', '.jpg', '.jpeg', '.bmp', '.webp'}))}, "
                            f"...). Expected {layout}")
        y = np.array([lookup[c] for c in classes], np.int64) if classes is not None \
            else np.full(len(files), -1, np.int64)
        lists[s] = (files, y)
    if p["test_fraction"] is not None:
        files, y = lists.pop("test")
        test = stratified_indices(y, max(1, round(p["test_fraction"] * len(y))), p["seed"], "test")
        train = np.setdiff1d(np.arange(len(y)), test)
        if len(train) == 0:
            raise DataError(f"source 'image_folder': test_fraction {p['test_fraction']} of "
                            f"{len(y)} images leaves no training images")
        if p["split"] == "all":
            lists["train"] = ([files[i] for i in train], y[train])
        lists["test"] = ([files[i] for i in test], y[test])

    kept, upstream_counts = subset_lists({s: lists[s] for s in ("train", "test") if s in lists}, p,
                                         "image_folder", lambda s: f"in {path}")
    empty = sorted({e for _, _, es in collections.values() for e in es})
    meta = {"upstream": [{"kind": "user folder", "path": str(path)}], "path": str(path),
            "class_names": names, "upstream_counts": upstream_counts,
            "layout": ("train/test folders, " if split_dirs else "") +
                      ("class subfolders" if names else "flat (unlabelled)"),
            "empty_class_folders": empty}
    return kept, meta


def build_image_folder(p: dict, raw_dir: Path) -> dict:
    lists, meta = list_image_folder(p)
    if p["store"] == "files":  # a file list, decoded batch by batch where it is read
        from .filelist import file_list_arrays

        return file_list_arrays(lists, meta, p)
    path = Path(p["path"])
    if sum(len(y) for _, y in lists.values()) > LARGE_FOLDER:
        log.warning("image folder %s: decoding %d images into one array; `store: files` keeps a file "
                    "list instead, decoded batch by batch", path, sum(len(y) for _, y in lists.values()))
    out, notes = {}, []
    for s, (files, y) in lists.items():
        decoded = [read_image(f, p["size"]) for f in files]
        x, n = stack_images(decoded, files, f"image folder {path} ({s})", p["channels"])
        out[f"x_{s}"], out[f"y_{s}"] = x, y
        notes += n
    meta["notes"] = "; ".join(["images decoded with PIL: grey (L, 1, LA, 16-bit scaled) kept grey, "
                               "everything else converted to RGB (alpha dropped)",
                               *([f"resize: {RESIZE_METHOD}"] if p["size"] else []), *notes])
    return {**out, "meta": meta}
