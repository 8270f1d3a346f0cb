"""config/imagenet.yaml plans the whole DAG on a tiny fake tree in its documented layouts (its SLURM
profile: tests/unit/test_profiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, parse_dry_run, snakemake

CONFIG = REPO / "config" / "imagenet.yaml"


def write_fake_tree(root: Path) -> None:
    """Two ImageNet classes (train/ and val/ class folders), the three flat MOS OOD folders and a
    DTD-like class-folder tree: the layouts config/imagenet.yaml's comments give."""
    from samples import write_photo_folder

    write_photo_folder(root / "imagenet", classes=("n01440764", "n01443537"), n_per_class=2,
                       splits=("train", "val"))
    for flat in ("iNaturalist/images", "SUN/images", "Places/images"):
        write_photo_folder(root / flat, classes=None, n_per_class=2, splits=())
    write_photo_folder(root / "dtd" / "images", classes=("banded", "woven"), n_per_class=2, splits=())


@pytest.mark.slow
def test_imagenet_config_plans_on_a_fake_tree(tmp_path, monkeypatch):
    write_fake_tree(tmp_path / "data")
    monkeypatch.setenv("GROOD_DATA_ROOT", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "--dry-run", configfile=CONFIG, timeout=300)
    jobs = parse_dry_run(proc.stdout)
    config = yaml.safe_load(CONFIG.read_text())
    by_rule: dict[str, set] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, set()).add(dict(wildcards).get("part") or dict(wildcards).get("dataset"))
    assert by_rule["prepare_dataset"] == set(config["datasets"])
    parts = {"train", "test", *config["benchmarks"]["imagenet"]["ood"]}
    assert by_rule["features"] == parts
    assert by_rule["score"] == parts - {"train"}
    assert len([j for j in jobs if j[0] == "score"]) == len(config["detectors"]) * (len(parts) - 1)
    assert {"train", "prototypes", "gradients", "fit_detector", "evaluate", "datacard"} <= set(by_rule)
