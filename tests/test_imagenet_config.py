"""config/imagenet.yaml plans the whole DAG on a tiny fake tree in its documented layouts, and its
SLURM profile sizes only rules that exist, giving the network jobs a CPU per decoding worker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, parse_dry_run, snakemake

CONFIG = REPO / "config" / "imagenet.yaml"
PROFILE = REPO / "profiles" / "slurm-imagenet" / "config.yaml"
NETWORK_RULES = ("train", "features", "prototypes")


def write_fake_tree(root: Path) -> None:
    """Two ImageNet classes (train/ and val/ class folders), the three flat MOS OOD folders and a
    DTD-like class-folder tree: the layouts config/imagenet.yaml's comments give."""
    from samples import write_photo_folder

    write_photo_folder(root / "imagenet", classes=("n01440764", "n01443537"), n_per_class=2,
                       splits=("train", "val"))
    for flat in ("iNaturalist/images", "SUN/images", "Places/images"):
        write_photo_folder(root / flat, classes=None, n_per_class=2, splits=())
    write_photo_folder(root / "dtd" / "images", classes=("banded", "woven"), n_per_class=2, splits=())


def _rules() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"^\s*rule (\w+):", text, re.M))


def test_profile_sizes_existing_rules_and_a_cpu_per_decoding_worker():
    profile = yaml.safe_load(PROFILE.read_text())
    config = yaml.safe_load(CONFIG.read_text())
    base = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert set(profile["set-resources"]) <= _rules()
    assert profile["executor"] == "slurm" and profile["default-resources"] == {
        **base["default-resources"], "mem_mb": profile["default-resources"]["mem_mb"]}
    workers = config["loader"]["workers"]
    for rule in NETWORK_RULES:
        res = profile["set-resources"][rule]
        assert res["gpu"] == 1 and res["cpus_per_task"] >= workers + 1, rule
    # the exact GROOD / kNN index of the training split (1.28M x 2048 float32) fits the fit and score jobs
    index_mb = 1_281_167 * 2048 * 4 / 2**20
    assert profile["set-resources"]["fit_detector"]["mem_mb"] > 2 * index_mb
    assert profile["set-resources"]["score"]["mem_mb"] > 2 * index_mb


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
