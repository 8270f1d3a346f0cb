"""Datasets that stream: an image folder prepared as a file list (``store: files``) gives the very
images the decoded ``npz`` store holds, decoded batch by batch in list order by any number of
workers -- the same features with 0 and 2 workers, and the same as from the npz store."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import grood.config
from grood.data import DataError
from grood.data.filelist import ImageFiles, folder_manifest
from samples import write_photo_folder
from grood.net.loader import chunked_batches, file_batches
from grood.net.preprocess import InputSpec
from grood.stages.io import load_split
from grood.stages.prepare_dataset import prepare_dataset_stage

REPO = Path(__file__).resolve().parents[2]  # the repository


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_photo_folder(tmp_path_factory.mktemp("photos") / "set", n_per_class=5)


def _prepare(folder: Path, tmp: Path, **params) -> Path:
    out = tmp / f"{params.get('store', 'npz')}_{params.get('size')}.npz"
    prepare_dataset_stage("photos", {"source": "image_folder", "path": str(folder), **params}, tmp / "raw", out)
    return out


def test_file_list_has_no_pixels_no_pickles_and_the_npz_stores_labels(folder, tmp_path):
    listed = _prepare(folder, tmp_path, store="files")
    decoded = _prepare(folder, tmp_path, store="npz", size=32)
    with np.load(listed, allow_pickle=False) as z:  # no object arrays
        keys = set(z.files)
        meta = json.loads(str(z["__meta__"]))
        assert z["files_train"].dtype.kind == "S" and z["bytes_train"].dtype == np.int64
    assert keys == {"files_train", "bytes_train", "y_train", "files_test", "bytes_test", "y_test", "__meta__"}
    assert meta["store"] == "files" and meta["manifest"] == folder_manifest(folder)
    assert meta["class_names"] == ["n01", "n02", "n03"] and meta["counts"] == {"train": 15, "test": 15}
    assert meta["n_train"] == 15 and meta["label_counts"]["train"] == {"0": 5, "1": 5, "2": 5}
    for split in ("train", "test"):
        files, y = load_split(listed, split)
        x, y_npz = load_split(decoded, split)
        assert isinstance(files, ImageFiles) and len(files) == len(x)
        np.testing.assert_array_equal(y, y_npz)
        assert Path(files.path(0)).is_file() and files.path(0).startswith(str(folder))


def test_decoded_files_are_the_npz_stores_pixels(folder, tmp_path):
    files, _ = load_split(_prepare(folder, tmp_path, store="files", size=32, channels=3), "test")
    x, _ = load_split(_prepare(folder, tmp_path, store="npz", size=32, channels=3), "test")
    for i in range(len(files)):
        np.testing.assert_array_equal(files.read(i), x[i])


def _features(images, spec, batch_size=4):
    from grood.net.forward import forward_batches
    from grood.net.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn_bn_gap", 3, 3, width=4).eval()
    return forward_batches(model, images, spec, torch.device("cpu"), batch_size, name="test")


@pytest.mark.slow  # decodes with worker processes: the slow tier
def test_features_do_not_depend_on_worker_count_or_store(folder, tmp_path):
    """The square path (size: 32, today's to_tensor) and the ImageNet recipe on mixed sizes."""
    square = InputSpec(3, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    files, _ = load_split(_prepare(folder, tmp_path, store="files", size=32), "train")
    x, _ = load_split(_prepare(folder, tmp_path, store="npz", size=32), "train")
    reference = _features(x, square)
    for workers in (0, 2):
        out = _features(replace(files, workers=workers), square)
        for k in ("features", "logits"):
            assert out[k].tobytes() == reference[k].tobytes(), (workers, k)

    recipe = InputSpec(3, 32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), resize=36)
    mixed, _ = load_split(_prepare(folder, tmp_path, store="files"), "train")  # 40–90 px, grey and RGB
    one = _features(mixed, recipe, batch_size=7)
    two = _features(replace(mixed, workers=2), recipe, batch_size=7)
    assert one["features"].tobytes() == two["features"].tobytes()


def test_chunks_keep_list_order_and_batch_boundaries():
    chunks = chunked_batches(23, batch_size=8, chunk=3)
    assert sum(chunks, []) == list(range(23))
    for c in chunks:
        assert len(c) <= 3 and c[0] // 8 == c[-1] // 8  # never straddles a batch
    spec = InputSpec(3, 8, (0.0,) * 3, (1.0,) * 3)

    class Fake(ImageFiles):
        def read(self, i):
            return np.full((8, 8, 3), i, np.uint8)

        def path(self, i):
            return f"img{i}"

    fake = Fake(root="", files=np.array([b"x"] * 23), nbytes=np.zeros(23, np.int64), workers=2)
    got = list(file_batches(fake, spec, 8, "fake", chunk=3))
    assert [s for s, _ in got] == [0, 8, 16] and [len(b) for _, b in got] == [8, 8, 7]
    values = torch.cat([b for _, b in got])[:, 0, 0, 0] * 255
    assert torch.equal(values.round(), torch.arange(23, dtype=torch.float32))


def test_a_changed_or_removed_file_is_named(tmp_path):
    folder = write_photo_folder(tmp_path / "set", n_per_class=2)
    files, _ = load_split(_prepare(folder, tmp_path, store="files"), "test")
    first, second = Path(files.path(0)), Path(files.path(1))
    with open(first, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DataError, match=rf"{first.name} changed since .* run snakemake again"):
        files.read(0)
    second.unlink()
    with pytest.raises(DataError, match=rf"{second.name} is in the file list .* no longer exists"):
        files.read(1)


def test_features_stage_streams_a_file_list_into_zarr(folder, tmp_path):
    """The features stage on a file list (2 workers) writes what the npz store gives."""
    from grood.net.models import build_model
    from grood.stages.features import features_stage
    from grood.storage import read_zarr
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint

    spec = InputSpec(3, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    torch.manual_seed(0)
    model = build_model("cnn_bn_gap", 3, 3, width=4).eval()
    save_checkpoint(tmp_path / "model.pt", TrainResult(model, spec, [0, 1, 2]), TrainConfig(arch="cnn_bn_gap", width=4))
    stores = {}
    for store, workers in (("files", 2), ("npz", 0)):
        data = _prepare(folder, tmp_path, store=store, size=32)
        out = tmp_path / f"{store}.zarr"
        features_stage(tmp_path / "model.pt", data, "train", True, out, batch_size=4, device="cpu", workers=workers)
        stores[store] = read_zarr(out)[0]
    for k in ("features", "logits", "labels"):
        np.testing.assert_array_equal(stores["files"][k], stores["npz"][k])


def test_class_means_streamed_equals_class_means():
    from grood.method.prototypes import class_means, class_means_streamed

    rng = np.random.default_rng(0)
    h, y = rng.normal(size=(1000, 7)).astype(np.float32), rng.integers(0, 4, 1000)
    assert class_means_streamed(h, y, 4, block=64).tobytes() == class_means(h, y, 4).tobytes()


def test_training_from_scratch_on_a_file_list_is_a_config_error():
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["datasets"]["mnist_tiny"] = {"source": "image_folder", "path": "/data/x", "store": "files"}
    msg = "\n".join(grood.config.validate(cfg))
    assert "benchmarks.tiny.train" in msg and "store: npz" in msg and "train.pretrained" in msg
    cfg["datasets"]["mnist_tiny"]["store"] = "zarr"
    assert "param 'store' of source 'image_folder' must be one of npz, files" in "\n".join(grood.config.validate(cfg))


def test_data_card_decodes_a_file_lists_samples(folder, tmp_path):
    from grood.data.card import card_row, read_card_inputs

    meta, samples = read_card_inputs(_prepare(folder, tmp_path, store="files"), n_samples=4)
    assert len(samples) == 4 and all(s.dtype == np.uint8 for s in samples)
    assert card_row("photos", meta, {"b": "ID"}, ["b"])["shape"] == "files"
