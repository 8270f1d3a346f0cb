"""OpenOOD's image lists (``source: imglist``): `<path relative to root> <label>` per line, on tiny
generated lists in OpenOOD's ImageNet layout (images_largescale/<set>/...), as file lists and
decoded, with OpenOOD's dict labels, and every way a list can be wrong named with its line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grood.data import DataError
from grood.data.filelist import ImageFiles
from grood.data.imglist import parse_label
from grood.stages.io import load_split
from grood.stages.prepare_dataset import prepare_dataset_stage
from samples import write_photo_folder


@pytest.fixture(scope="module")
def largescale(tmp_path_factory) -> Path:
    """images_largescale/ with a two-class ID tree, SSB-hard-like class folders and a flat NINCO-like
    set, and benchmark_imglist/imagenet/ with their lists (OpenOOD's names)."""
    base = tmp_path_factory.mktemp("openood")
    root = base / "images_largescale"
    write_photo_folder(root / "imagenet_1k", classes=("n01", "n02"), n_per_class=3, splits=("train", "val"),
                       sizes=(30, 50))
    write_photo_folder(root / "ssb_hard", classes=("n09", "n10"), n_per_class=3, splits=(), sizes=(30, 50), seed=5)
    write_photo_folder(root / "ninco", classes=None, n_per_class=4, splits=(), sizes=(30, 50), seed=6)
    lists = base / "benchmark_imglist" / "imagenet"
    lists.mkdir(parents=True)

    def rel(folder):
        return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file())

    (lists / "test_ssb_hard.txt").write_text("".join(f"{r} -1\n" for r in rel("ssb_hard")))
    ninco = rel("ninco")  # one line in OpenOOD's dict form
    (lists / "test_ninco.txt").write_text(f"{ninco[0]} {{'label': -1}}\n" + "".join(f"{r} -1\n" for r in ninco[1:]))
    for split, name in (("train", "train_imagenet.txt"), ("val", "test_imagenet.txt")):
        lines = [f"{r} {int(r.split('/')[2] == 'n02')}\n" for r in rel(f"imagenet_1k/{split}")]
        (lists / name).write_text("# an ID list: labels are the class indices\n" + "".join(lines))
    return base


def _prepare(tmp: Path, name: str = "set", **params) -> Path:
    out = tmp / f"{name}.npz"
    prepare_dataset_stage(name, {"source": "imglist", **params}, tmp / "raw", out)
    return out


def test_an_ood_list_becomes_a_file_list_with_no_labels(largescale, tmp_path):
    root = largescale / "images_largescale"
    out = _prepare(tmp_path, path=str(largescale / "benchmark_imglist/imagenet/test_ssb_hard.txt"), root=str(root))
    files, y = load_split(out, "test")
    assert isinstance(files, ImageFiles) and len(files) == 6 and (y == -1).all()
    assert files.path(0) == str(root / "ssb_hard/n09/img000.png")
    assert files.read(1).ndim == 3  # decoded where it is read
    with np.load(out, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        assert "x_test" not in z.files
    assert meta["store"] == "files" and meta["counts"] == {"test": 6} and meta["splits"] == ["test"]
    assert meta["upstream"][0]["file"].endswith("test_ssb_hard.txt") and len(meta["upstream"][0]["sha256"]) == 64


def test_id_lists_with_a_training_split_decoded_to_npz(largescale, tmp_path):
    lists = largescale / "benchmark_imglist/imagenet"
    out = _prepare(tmp_path, path=str(lists / "test_imagenet.txt"), train=str(lists / "train_imagenet.txt"),
                   root=str(largescale / "images_largescale"), store="npz", size=24, channels=3, max_test=4)
    x, y = load_split(out, "test")
    x_train, y_train = load_split(out, "train")
    assert x.shape == (4, 24, 24, 3) and x.dtype == np.uint8 and sorted(np.bincount(y)) == [2, 2]
    assert x_train.shape == (6, 24, 24, 3) and np.bincount(y_train).tolist() == [3, 3]


def test_dict_labels_and_ninco(largescale, tmp_path):
    out = _prepare(tmp_path, path=str(largescale / "benchmark_imglist/imagenet/test_ninco.txt"),
                   root=str(largescale / "images_largescale"))
    files, y = load_split(out, "test")
    assert len(files) == 4 and (y == -1).all()
    assert parse_label("{'label': 7, 'soft_label': [0.5]}", "x") == 7 and parse_label(" 12 ", "x") == 12


@pytest.mark.parametrize("line, error", [
    ("ssb_hard/n09/img000.png", "has no label"),
    ("ssb_hard/n09/img000.png zebra", "neither an integer nor a dict"),
    ("ssb_hard/n09/img000.png {'label': 'x'}", "neither an integer nor a dict"),
    ("/abs/img.png -1", "not a path below root"),
    ("../outside.png -1", "not a path below root"),
    ("ssb_hard/n09/nothere.png -1", "1 of the 1 images .* are not below"),
])
def test_a_bad_line_is_named(largescale, tmp_path, line, error):
    bad = tmp_path / "bad.txt"
    bad.write_text(line + "\n")
    with pytest.raises(DataError, match=error) as e:
        _prepare(tmp_path, path=str(bad), root=str(largescale / "images_largescale"))
    if "below" not in error:
        assert f"{bad}:1" in str(e.value)


def test_missing_files_roots_and_training_labels(largescale, tmp_path, monkeypatch):
    lists = largescale / "benchmark_imglist/imagenet"
    root = str(largescale / "images_largescale")
    with pytest.raises(DataError, match="no list file"):
        _prepare(tmp_path, path=str(lists / "nope.txt"), root=root)
    with pytest.raises(DataError, match="root .* is not a folder"):
        _prepare(tmp_path, path=str(lists / "test_ninco.txt"), root=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="training list .* without a class label"):
        _prepare(tmp_path, path=str(lists / "test_ninco.txt"), train=str(lists / "test_ssb_hard.txt"), root=root)
    monkeypatch.delenv("OPENOOD_ROOT", raising=False)
    with pytest.raises(DataError, match="OPENOOD_ROOT .* is not set"):
        _prepare(tmp_path, path=str(lists / "test_ninco.txt"), root="${OPENOOD_ROOT}/images_largescale")
    with pytest.raises(DataError, match="param 'store'"):
        _prepare(tmp_path, path=str(lists / "test_ninco.txt"), root=root, store="zip")
