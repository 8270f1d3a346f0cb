"""The on-disk sources (cifar10, cifar100, svhn, image_folder, npz) on tiny files that the tests
write in exactly the standard layouts, their error messages, the conversion to the ID model's
input format, and the data card. No network, no real data: seconds on a CPU."""
from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from grood.data import REGISTRY, SOURCES, DataError, build_dataset
from grood.data import ondisk
from samples import (patterns, write_cifar10, write_cifar100, write_image_folder,
                                write_svhn)
from grood.data.sources import resolve_params

ONDISK = ("cifar10", "cifar100", "svhn", "image_folder", "npz")


def build(source, tmp_path, **params):
    return build_dataset(source, params, tmp_path / "raw")


def assert_dataset(a, splits: dict):
    for s, shape in splits.items():
        assert a[f"x_{s}"].dtype == np.uint8 and a[f"y_{s}"].dtype == np.int64
        assert a[f"x_{s}"].shape == shape and a[f"y_{s}"].shape == shape[:1]
        assert a["meta"]["counts"][s] == shape[0]
    assert {k for k in a if k.startswith("x_")} == {f"x_{s}" for s in splits}
    json.dumps(a["meta"])  # JSON-serialisable as stored in the npz


# --------------------------------------------------------------------------------- registry
def test_sources_registered_with_params():
    for name in ONDISK:
        assert name in SOURCES and SOURCES[name]
        assert "path" in REGISTRY[name].params and "split" in REGISTRY[name].params
    with pytest.raises(DataError, match="needs param 'path'"):
        resolve_params("image_folder", {})
    with pytest.raises(DataError, match="unknown param 'folder'.*allowed params:.*path"):
        resolve_params("image_folder", {"folder": "x"})
    with pytest.raises(DataError, match="'split'.*all, test"):
        resolve_params("cifar10", {"path": "x", "split": "val"})
    with pytest.raises(DataError, match="'size'.*integer"):
        resolve_params("npz", {"path": "x", "size": "big"})
    with pytest.raises(DataError, match="'label_mode'.*fine, coarse"):
        resolve_params("cifar100", {"path": "x", "label_mode": "medium"})
    with pytest.raises(DataError, match="no label 20 with label_mode 'coarse'"):
        resolve_params("cifar100", {"path": "x", "label_mode": "coarse", "classes": [20]})
    with pytest.raises(DataError, match="no label 10"):
        resolve_params("cifar10", {"path": "x", "classes": [10]})


def test_path_expands_env_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("GROOD_TEST_ROOT", str(tmp_path))
    assert resolve_params("npz", {"path": "$GROOD_TEST_ROOT/a.npz"})["path"] == \
        f"{tmp_path}/a.npz"
    assert resolve_params("npz", {"path": "~/a.npz"})["path"] == os.path.expanduser("~/a.npz")
    monkeypatch.delenv("GROOD_DATA_ROOT", raising=False)
    with pytest.raises(DataError, match="GROOD_DATA_ROOT.*not set.*export GROOD_DATA_ROOT"):
        resolve_params("cifar10", {"path": "${GROOD_DATA_ROOT}/cifar10"})


# --------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_reads_the_pickled_batches(tmp_path):
    write_cifar10(tmp_path, n_train=50, n_test=20, seed=5)
    x, y = patterns(70, 10, seed=5)
    a = build("cifar10", tmp_path, path=str(tmp_path))
    assert_dataset(a, {"train": (50, 32, 32, 3), "test": (20, 32, 32, 3)})
    assert np.array_equal(a["x_train"], x[:50]) and np.array_equal(a["y_train"], y[:50])
    assert np.array_equal(a["x_test"], x[50:]) and np.array_equal(a["y_test"], y[50:])
    meta = a["meta"]
    assert meta["class_names"][:2] == ["airplane", "automobile"] and len(meta["class_names"]) == 10
    assert [Path(u["file"]).name for u in meta["upstream"]] == \
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    assert all(u["official"] is False for u in meta["upstream"])  # md5 differs from the release
    # `path` may also be the batches folder itself; `split: test` reads only test_batch
    for f in ("data_batch_1", "data_batch_2"):
        (tmp_path / "cifar-10-batches-py" / f).unlink()
    b = build("cifar10", tmp_path, path=str(tmp_path / "cifar-10-batches-py"), split="test",
              classes=[1, 2], max_test=3)
    assert_dataset(b, {"test": (3, 32, 32, 3)})
    assert set(b["y_test"].tolist()) <= {1, 2}


def test_cifar10_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError) as e:
        build("cifar10", tmp_path, path=str(tmp_path / "nowhere"))
    msg = str(e.value)
    assert "data_batch_1" in msg and "cifar-10-batches-py/" in msg and "test_batch" in msg
    assert "cifar-10-python.tar.gz" in msg and "Fix:" in msg and "download: true" in msg

    folder = write_cifar10(tmp_path, n_train=10, n_test=10)
    (folder / "test_batch").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match=r"test_batch: not a readable CIFAR batch.*Fix"):
        build("cifar10", tmp_path, path=str(tmp_path), split="test")

    # a pickle that would run code is refused, not executed
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="refusing to load"):
        build("cifar10", tmp_path, path=str(tmp_path), split="test")
    assert not (tmp_path / "pwned").exists()

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8),
                                                      b"labels": [0, 1]}))
    with pytest.raises(DataError, match=r"uint8 \(N, 3072\)"):
        build("cifar10", tmp_path, path=str(tmp_path), split="test")
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DataError, match="no 'labels' entry"):
        build("cifar10", tmp_path, path=str(tmp_path), split="test")


def test_download_fails_fast_offline(tmp_path):
    if ondisk._probe(ondisk.CIFAR10_LAYOUT["url"]) is None:
        pytest.skip("this machine reaches www.cs.toronto.edu: not testing a 170 MB download")
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="offline.*Fix:.*cifar-10-python.tar.gz"):
        build("cifar10", tmp_path, path=str(tmp_path / "c10"), download=True)
    with pytest.raises(DataError, match="unreachable.*train,test}_32x32.mat"):
        build("svhn", tmp_path, path=str(tmp_path / "svhn"), download=True)
    assert time.perf_counter() - t0 < 2 * ondisk.PROBE_TIMEOUT_S + 5


def test_official_md5_from_torchvision():
    md5 = ondisk.official_md5("CIFAR10")
    assert md5["test_batch"] == "40351d587109b95175f43aff81a1287e" and len(md5) == 7
    assert set(ondisk.official_md5("SVHN")) >= {"train_32x32.mat", "test_32x32.mat"}


# --------------------------------------------------------------------------------- CIFAR-100
def test_cifar100_fine_and_coarse(tmp_path):
    write_cifar100(tmp_path, n_train=100, n_test=40, seed=1)
    x, y = patterns(140, 100, seed=1, offset=10)
    fine = build("cifar100", tmp_path, path=str(tmp_path))
    assert_dataset(fine, {"train": (100, 32, 32, 3), "test": (40, 32, 32, 3)})
    assert np.array_equal(fine["y_train"], y[:100]) and np.array_equal(fine["x_test"], x[100:])
    assert len(fine["meta"]["class_names"]) == 100 and fine["meta"]["class_names"][0] == "apple"
    coarse = build("cifar100", tmp_path, path=str(tmp_path), label_mode="coarse", split="test")
    assert np.array_equal(coarse["y_test"], y[100:] // 5)
    assert coarse["meta"]["class_names"][1] == "fish"
    with pytest.raises(DataError, match="cifar-100-python.*train, test"):
        build("cifar100", tmp_path, path=str(tmp_path / "empty"))


# --------------------------------------------------------------------------------- SVHN
def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    write_svhn(tmp_path, n_train=30, n_test=20, seed=2)
    x, y = patterns(50, 10, seed=2, offset=3)
    a = build("svhn", tmp_path, path=str(tmp_path))
    assert_dataset(a, {"train": (30, 32, 32, 3), "test": (20, 32, 32, 3)})
    assert np.array_equal(a["x_train"], x[:30]) and np.array_equal(a["y_test"], y[30:])
    assert 0 in a["y_train"] and a["y_train"].max() <= 9  # label 10 became 0

    (tmp_path / "train_32x32.mat").unlink()
    assert_dataset(build("svhn", tmp_path, path=str(tmp_path), split="test"),
                   {"test": (20, 32, 32, 3)})
    with pytest.raises(DataError, match="missing .*train_32x32.mat.*Format 2"):
        build("svhn", tmp_path, path=str(tmp_path))
    (tmp_path / "test_32x32.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="test_32x32.mat: not a readable MATLAB file"):
        build("svhn", tmp_path, path=str(tmp_path), split="test")
    savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((28, 28, 3, 2), np.uint8),
                                          "y": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"X must be \(32, 32, 3, N\)"):
        build("svhn", tmp_path, path=str(tmp_path), split="test")


# --------------------------------------------------------------------------------- image folders
def test_image_folder_class_subfolders(tmp_path):
    root = write_image_folder(tmp_path / "f", n_per_class=4, classes=("cat", "dog", "emu"))
    a = build("image_folder", tmp_path, path=str(root))
    assert_dataset(a, {"test": (12, 32, 32, 3)})
    assert a["meta"]["class_names"] == ["cat", "dog", "emu"]
    assert np.bincount(a["y_test"]).tolist() == [4, 4, 4]
    # classes / max_test choose the same images as build_dataset's own subset, decoding fewer
    sub = build("image_folder", tmp_path, path=str(root), classes=[0, 2], max_test=5, seed=3)
    full = build("image_folder", tmp_path, path=str(root))
    from grood.data.subset import stratified_indices

    keep = np.isin(full["y_test"], [0, 2])
    x, y = full["x_test"][keep], full["y_test"][keep]
    idx = stratified_indices(y, 5, 3, "test")
    assert np.array_equal(sub["x_test"], x[idx]) and np.array_equal(sub["y_test"], y[idx])
    assert sub["meta"]["upstream_counts"] == {"test": 12}


def test_image_folder_flat_grey_nested_and_split(tmp_path):
    flat = write_image_folder(tmp_path / "flat", n_per_class=6, classes=None, grey=True, size=20)
    a = build("image_folder", tmp_path, path=str(flat))
    assert_dataset(a, {"test": (6, 20, 20)})  # grey kept grey, size kept
    assert (a["y_test"] == -1).all() and a["meta"]["class_names"] == []

    # TinyImageNet-style: <class>/images/*.JPEG, found below the class folder
    tin = tmp_path / "tin"
    for c in ("n01", "n02"):
        write_image_folder(tin / c / "images", n_per_class=3, classes=None, size=64, ext=".JPEG")
    b = build("image_folder", tmp_path, path=str(tin), size=32)
    assert_dataset(b, {"test": (6, 32, 32, 3)})
    assert b["meta"]["class_names"] == ["n01", "n02"] and "resize" in b["meta"]["notes"]

    # train/ + val/ folders → both splits with one label space
    sp = tmp_path / "split"
    write_image_folder(sp / "train", n_per_class=5, classes=("a", "b"))
    write_image_folder(sp / "val", n_per_class=2, classes=("a", "b"), seed=9)
    c = build("image_folder", tmp_path, path=str(sp))
    assert_dataset(c, {"train": (10, 32, 32, 3), "test": (4, 32, 32, 3)})
    d = build("image_folder", tmp_path, path=str(sp), split="test")
    assert_dataset(d, {"test": (4, 32, 32, 3)})

    # one folder split by test_fraction (a user's own ID set)
    e = build("image_folder", tmp_path, path=str(sp / "train"), test_fraction=0.4)
    assert_dataset(e, {"train": (6, 32, 32, 3), "test": (4, 32, 32, 3)})
    assert np.bincount(e["y_test"]).tolist() == [2, 2]


def test_image_folder_mixed_modes_become_rgb(tmp_path):
    from PIL import Image

    root = tmp_path / "mixed"
    root.mkdir()
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(root / "grey.png")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(root / "rgba.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("P").save(root / "pal.gif")
    a = build("image_folder", tmp_path, path=str(root))
    assert_dataset(a, {"test": (3, 8, 8, 3)})
    assert (a["x_test"][0] == 200).all()  # grey.png (sorted first) repeated to RGB
    assert "repeated to RGB" in a["meta"]["notes"]
    g = build("image_folder", tmp_path, path=str(root), channels=1)
    assert_dataset(g, {"test": (3, 8, 8)})


def test_image_folder_errors(tmp_path):
    ragged = tmp_path / "ragged"
    write_image_folder(ragged, n_per_class=2, classes=None, size=(40, 30))
    with pytest.raises(DataError, match=r"not square.*40x30.*Fix: set the dataset's `size`"):
        build("image_folder", tmp_path, path=str(ragged))
    assert_dataset(build("image_folder", tmp_path, path=str(ragged), size=16),
                   {"test": (2, 16, 16, 3)})
    write_image_folder(ragged, n_per_class=1, classes=None, size=24, seed=8)
    with pytest.raises(DataError, match="found 2 sizes"):
        build("image_folder", tmp_path, path=str(ragged))

    bad = tmp_path / "bad"
    write_image_folder(bad, n_per_class=2, classes=("a",))
    (bad / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=r"cannot read image .*broken.png.*Fix"):
        build("image_folder", tmp_path, path=str(bad))

    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="no images in .*empty"):
        build("image_folder", tmp_path, path=str(empty))
    with pytest.raises(DataError, match="is not a folder.*class subfolders"):
        build("image_folder", tmp_path, path=str(tmp_path / "missing"))

    both = tmp_path / "both"
    write_image_folder(both, n_per_class=1, classes=("a",))
    write_image_folder(both, n_per_class=1, classes=None)
    with pytest.raises(DataError, match="both image files .* and subfolders"):
        build("image_folder", tmp_path, path=str(both))


# --------------------------------------------------------------------------------- npz
def test_npz_forms(tmp_path):
    x, y = patterns(12, 3, size=28, channels=1)
    np.savez(tmp_path / "a.npz", images=x, labels=y, class_names=np.array(["p", "q", "r"]))
    a = build("npz", tmp_path, path=str(tmp_path / "a.npz"))
    assert_dataset(a, {"test": (12, 28, 28)})
    assert np.array_equal(a["x_test"], x) and a["meta"]["class_names"] == ["p", "q", "r"]
    assert len(a["meta"]["upstream"][0]["sha256"]) == 64

    xc, yc = patterns(10, 2, size=16)
    np.savez(tmp_path / "b.npz", x_train=xc.transpose(0, 3, 1, 2).astype(np.float32) / 255,
             y_train=yc, x_test=xc[:4], y_test=yc[:4])
    b = build("npz", tmp_path, path=str(tmp_path / "b.npz"))
    assert_dataset(b, {"train": (10, 16, 16, 3), "test": (4, 16, 16, 3)})
    assert np.array_equal(b["x_train"], xc)  # channels-first floats in [0, 1] → uint8 exactly
    assert "channels-first" in b["meta"]["notes"] and "scaled by 255" in b["meta"]["notes"]
    c = build("npz", tmp_path, path=str(tmp_path / "b.npz"), split="test", size=8)
    assert_dataset(c, {"test": (4, 8, 8, 3)})
    np.savez(tmp_path / "c.npz", images=xc[:3])  # no labels: unlabelled OOD set
    assert (build("npz", tmp_path, path=str(tmp_path / "c.npz"))["y_test"] == -1).all()


def test_npz_errors(tmp_path):
    f = tmp_path / "x.npz"
    cases = [
        ({"images": np.zeros((4, 8, 8, 2), np.uint8)}, r"C = 1 \(grey\), 3 \(RGB\) or 4"),
        ({"images": np.zeros((4, 8, 6), np.uint8)}, r"8x6 .*not square.*size: 6"),
        ({"images": np.zeros((0, 8, 8), np.uint8)}, "no images"),
        ({"images": np.full((2, 8, 8), 300)}, "0..255"),
        ({"images": np.full((2, 8, 8), 2.5)}, r"\[0, 1\]"),
        ({"images": np.zeros((2, 8, 8), np.uint8), "labels": [0, 1, 2]}, "one integer per"),
        ({"x_train": np.zeros((2, 8, 8), np.uint8)}, "no `images` or `x_test`"),
        ({"images": np.zeros((2, 8, 8), np.uint8), "x_test": np.zeros((2, 8, 8), np.uint8)},
         "use one form"),
    ]
    for arrays, pattern in cases:
        np.savez(f, **arrays)
        with pytest.raises(DataError, match=pattern) as e:
            build("npz", tmp_path, path=str(f))
        assert str(f) in str(e.value)
    np.savez(f, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="not a readable .npz without pickles"):
        build("npz", tmp_path, path=str(f))
    with pytest.raises(DataError, match="no file .*missing.npz"):
        build("npz", tmp_path, path=str(tmp_path / "missing.npz"))


# --------------------------------------------------------------------------------- to the ID format
def test_foreign_sets_reach_the_cifar_model_format(tmp_path):
    """MNIST-like grey 28x28 and 64x64 folders become the CIFAR model's 3x32x32 input."""
    from grood.net.preprocess import spec_from_training, to_tensor

    write_cifar10(tmp_path, n_train=20, n_test=10)
    spec = spec_from_training(build("cifar10", tmp_path, path=str(tmp_path))["x_train"])
    assert (spec.channels, spec.size) == (3, 32)
    grey, _ = patterns(5, 2, size=28, channels=1)
    np.savez(tmp_path / "g.npz", images=grey)
    big = write_image_folder(tmp_path / "big", n_per_class=3, classes=None, size=64)
    for name, a in (("grey", build("npz", tmp_path, path=str(tmp_path / "g.npz"))),
                    ("big", build("image_folder", tmp_path, path=str(big)))):
        t = to_tensor(a["x_test"], spec, name)
        assert tuple(t.shape[1:]) == (3, 32, 32) and bool(t.isfinite().all()), name
    # grey model, colour OOD set
    grey_spec = spec_from_training(grey)
    assert tuple(to_tensor(a["x_test"], grey_spec, "big").shape[1:]) == (1, 28, 28)
    # what cannot be converted names the dataset (preprocess's own checks)
    with pytest.raises(ValueError, match="my_set.*C in 1/3/4"):
        to_tensor(np.zeros((2, 8, 8, 2), np.uint8), spec, "my_set")
    with pytest.raises(ValueError, match="my_set.*square"):
        to_tensor(np.zeros((2, 8, 6), np.uint8), spec, "my_set")


# --------------------------------------------------------------------------------- data card
def test_datacard(tmp_path):
    from grood.data.card import roles, write_datacard
    from grood.pipeline import prepare_dataset_stage

    write_cifar10(tmp_path / "d", n_train=20, n_test=10)
    write_svhn(tmp_path / "d", n_train=5, n_test=10)
    specs = {"c10": {"source": "cifar10", "path": str(tmp_path / "d")},
             "sv": {"source": "svhn", "path": str(tmp_path / "d"), "split": "test"},
             "noise": {"source": "noise", "kind": "blobs", "n": 10, "size": 16}}
    npz = {}
    for name, spec in specs.items():
        npz[name] = tmp_path / f"{name}.npz"
        prepare_dataset_stage(name, spec, tmp_path / "raw", npz[name])
    benchmarks = {"b1": {"id": "c10", "ood": {"sv": "far", "noise": "far"}},
                  "b2": {"id": "sv", "ood": {"c10": "near"}}}
    assert roles(benchmarks, "noise")["noise"] == {"b1": "far", "b2": "ood_val"}
    out = {k: tmp_path / "card" / f"datacard.{k}" for k in ("md", "csv", "png")}
    table = write_datacard(npz, benchmarks, out["md"], out["csv"], out["png"])
    import pandas as pd

    csv = pd.read_csv(out["csv"]).set_index("name")
    assert list(csv.index) == ["c10", "sv", "noise"]
    assert {"source", "licence", "n_train", "n_test", "shape", "role_b1", "role_b2"} <= \
        set(csv.columns)
    assert csv.loc["c10", "n_train"] == 20 and csv.loc["c10", "n_test"] == 10
    assert csv.loc["c10", "shape"] == "32x32x3" and csv.loc["noise", "shape"] == "16x16x1"
    assert (csv.loc["c10", "role_b1"], csv.loc["c10", "role_b2"]) == ("ID", "near")
    assert csv.loc["sv", "role_b1"] == "far" and csv.loc["sv", "licence"].startswith("non-comm")
    assert "not the official files" in csv.loc["c10", "upstream"]
    md = out["md"].read_text()
    assert "| c10" in md and "## noise" in md and "datacard.png" in md
    from PIL import Image

    w, h = Image.open(out["png"]).size
    assert w > 400 and h > 3 * 60
    assert len(table) == 3
