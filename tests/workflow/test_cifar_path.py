"""The paper's CIFAR-10 path end to end on CPU, on tiny files in the exact standard formats.

A tiny cifar-10-batches-py (ID), cifar-100-python and SVHN .mat (OOD), a folder of 64x64 PNGs
(TinyImageNet-like, resized by the model's preprocessing) and a grey 28x28 .npz (MNIST-like,
grey → RGB) are written to a temporary folder; a 1-epoch width-8 ResNet-18 (CIFAR stem) runs
through the whole workflow to metrics.csv and the data card. Plus a dry run of
config/cifar10.yaml, the GPU/cluster benchmark, which needs no data to plan.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from samples import (patterns, write_cifar10, write_cifar100, write_image_folder,
                                write_svhn)

REPO = Path(__file__).resolve().parents[2]  # the repository
OOD = {"cifar100_tiny": "near", "tin_tiny": "near", "svhn_tiny": "far", "mnist_like": "far"}


def run_snakemake(workdir: Path, configfile: Path, *args: str, env: dict | None = None,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def write_tiny_data(root: Path) -> None:
    write_cifar10(root, n_train=200, n_test=60)
    write_cifar100(root, n_train=10, n_test=60)
    write_svhn(root / "svhn", n_train=10, n_test=60)
    write_image_folder(root / "tin" / "images", n_per_class=60, classes=None, size=64)
    grey, labels = patterns(60, 10, size=28, seed=9, channels=1)
    np.savez(root / "mnist_like.npz", images=grey, labels=labels)


CIFAR10_RECIPE = yaml.safe_load((REPO / "config" / "cifar10.yaml").read_text())["benchmarks"]["cifar10"]["train"]


def tiny_config(data: Path, raw: Path) -> dict:
    return {
        "resources_dir": "resources", "results_dir": "results", "raw_dir": str(raw),
        "device": "cpu", "threads": 1,
        "datasets": {
            "cifar10_tiny": {"source": "cifar10", "path": str(data)},
            "cifar100_tiny": {"source": "cifar100", "path": str(data), "split": "test"},
            "svhn_tiny": {"source": "svhn", "path": str(data / "svhn"), "split": "test"},
            "tin_tiny": {"source": "image_folder", "path": str(data / "tin" / "images")},
            "mnist_like": {"source": "npz", "path": str(data / "mnist_like.npz")},
        },
        "benchmarks": {"cifar_tiny": {
            "id": "cifar10_tiny", "ood": OOD,
            # the CIFAR-10 config's own recipe (OpenOOD's: cosine, Nesterov, crop + flip, fp32), shrunk
            "train": {**CIFAR10_RECIPE, "width": 8, "epochs": 1, "batch_size": 16}}},
        "seeds": [0],
        "prototypes": {"layer": "layer1", "n_mix": 50},
        "features": {"batch_size": 64},
        "gradients": {"batch_size": 64},
        "detectors": {"grood": {"method": "grood", "k": 1}, "msp": {"method": "msp"}},
    }


@pytest.mark.slow
def test_cifar_path_end_to_end(tmp_path):
    data = tmp_path / "data"
    write_tiny_data(data)
    work = tmp_path / "run"
    work.mkdir()
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_config(data, tmp_path / "raw"), sort_keys=False))
    proc = run_snakemake(work, config)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"

    res = work / "results"
    metrics = pd.read_csv(res / "cifar_tiny" / "metrics.csv")
    assert set(metrics["ood"]) == set(OOD)
    assert set(metrics["detector"]) == {"grood", "msp"}
    for ood, group in OOD.items():
        rows = metrics[metrics["ood"] == ood]
        assert len(rows) == 2 and (rows["group"] == group).all() and (rows["n_ood"] == 60).all()
    assert metrics["auroc"].between(0, 1).all()

    card = pd.read_csv(res / "datacard.csv").set_index("name")
    assert card.loc["cifar10_tiny", "role_cifar_tiny"] == "ID"
    assert card.loc["cifar10_tiny", "n_train"] == 200
    assert card.loc["tin_tiny", "shape"] == "64x64x3"  # stored as is, resized by the model
    assert card.loc["mnist_like", "shape"] == "28x28x1"
    assert {card.loc[o, "role_cifar_tiny"] for o in OOD} == {"near", "far"}
    assert (res / "datacard.png").stat().st_size > 0 and (res / "datacard.md").stat().st_size > 0


@pytest.mark.slow
def test_cifar10_config_dry_run(tmp_path):
    """config/cifar10.yaml is schema-valid and plans the full DAG without any data present."""
    proc = run_snakemake(tmp_path, REPO / "config" / "cifar10.yaml", "-n", "--quiet", "rules",
                         env={"GROOD_DATA_ROOT": str(tmp_path / "data")}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout + proc.stderr
    for rule in ("prepare_dataset", "train", "features", "score", "evaluate", "datacard"):
        assert rule in out, rule
