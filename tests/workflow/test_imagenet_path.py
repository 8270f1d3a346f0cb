"""Bring your own model, end to end: a tiny ImageNet-like class-folder tree (mixed sizes, JPEG and
PNG, some grey) prepared as file lists, and a randomly initialised torchvision ResNet-50 saved as
the user's state_dict, through the whole workflow to metrics.csv -- nothing trained, every image
decoded by parallel workers with the ImageNet recipe shrunk to 36 → 32 px."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from conftest import snakemake
from samples import write_photo_folder
from grood.storage import sha256_file

pytestmark = pytest.mark.slow
OOD = {"flat_photos": "near", "textures_like": "far"}


def write_data(root):
    write_photo_folder(root / "inet", classes=("n01", "n02", "n03"), n_per_class=8, splits=("train", "val"),
                       sizes=(36, 80), seed=1)
    write_photo_folder(root / "flat", classes=None, n_per_class=10, splits=(), sizes=(40, 70), seed=2)
    write_photo_folder(root / "tex", classes=("a", "b"), n_per_class=5, splits=(), sizes=(50, 90), seed=3)


def test_checkpoint_resnet50_through_the_whole_pipeline(tmp_path):
    import torchvision

    data = tmp_path / "data"
    write_data(data)
    torch.manual_seed(0)
    ckpt = tmp_path / "resnet50_random.pt"
    torch.save(torchvision.models.resnet50(num_classes=3).state_dict(), ckpt)
    config = {
        "resources_dir": "resources", "results_dir": "results", "device": "cpu", "threads": 1,
        "loader": {"workers": 2},
        "datasets": {
            "inet": {"source": "image_folder", "path": str(data / "inet"), "store": "files"},
            "flat_photos": {"source": "image_folder", "path": str(data / "flat"), "split": "test", "store": "files"},
            "textures_like": {"source": "image_folder", "path": str(data / "tex"), "split": "test",
                              "size": 48},  # decoded npz store, square 48 px; the recipe crops 32
        },
        "benchmarks": {"inet_tiny": {"id": "inet", "ood": OOD,
                                     "train": {"checkpoint": str(ckpt), "arch": "resnet50",
                                               "preprocess": {"resize": 36, "crop": 32}}}},
        "seeds": [0],
        "prototypes": {"layer": "layer1", "n_mix": 12},
        "features": {"batch_size": 8},
        "gradients": {"batch_size": 8},
        "detectors": {"grood": {"method": "grood", "k": 1}, "msp": {"method": "msp"},
                      "knn": {"method": "knn", "k": 2}},
    }
    work = tmp_path / "run"
    work.mkdir()
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    snakemake(work, configfile=path, timeout=3600)  # minutes unloaded; a loaded machine is slow

    res = work / "results" / "inet_tiny"
    summary = json.loads((res / "seed0" / "train.json").read_text())
    assert summary["train_seconds"] == 0.0 and summary["n_test"] == 24
    assert summary["model_source"]["sha256"] == sha256_file(ckpt)
    assert summary["input_spec"]["resize"] == 36 and summary["input_spec"]["size"] == 32
    metrics = pd.read_csv(res / "metrics.csv")
    assert set(metrics["detector"]) == {"grood", "msp", "knn"} and set(metrics["ood"]) == set(OOD)
    assert (metrics.groupby("ood")["n_ood"].first() == pd.Series({"flat_photos": 10, "textures_like": 10})).all()
    assert metrics["auroc"].between(0, 1).all()
