"""config/imagenet.yaml's SLURM profile sizes only rules that exist, giving the network jobs a CPU
per decoding worker and the k-NN jobs memory for the ImageNet index."""

from __future__ import annotations

import re

import yaml

from conftest import REPO

CONFIG = REPO / "config" / "imagenet.yaml"
PROFILE = REPO / "profiles" / "slurm-imagenet" / "config.yaml"
NETWORK_RULES = ("train", "features", "prototypes")


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
