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
    # the exact GROOD / kNN index of the training split (1.28M x 2048 float32) fits the fit and score jobs,
    # with the copies faiss's serialisation holds (measured × 3)
    index_mb = 1_281_167 * 2048 * 4 / 2**20
    assert profile["set-resources"]["fit_detector"]["mem_mb"] > 3 * index_mb
    assert profile["set-resources"]["score"]["mem_mb"] > 3 * index_mb


def test_profile_memory_covers_the_cost_models_largest_job_per_rule():
    """Every rule's mem_mb in profiles/slurm-imagenet is at least the cost model's host memory of its
    largest job for config/imagenet.yaml (its sizes, OpenOOD v1.5's sets), with 10% to spare: a
    change to the config or the pipeline that outgrows the profile fails here."""
    from benchmarks.costmodel import Assumptions, Measured, imagenet_workload, rule_memory, stage_costs

    profile = yaml.safe_load(PROFILE.read_text())["set-resources"]
    # what memory depends on, as measured (benchmarks.costmodel, docs/scale.md); speeds do not matter here
    m = Measured(threads=2, load_average=0.0, decode_s_per_image=0.006, jpeg_kb=91, forward_s_per_image=0.2,
                 forward_s_per_image_1=0.4, early_s_per_image=0.05, forward_rss_gb=1.05, gemm_gflops=136,
                 flat_search_fraction=0.9, rerank_ns_per_value=2.0, gradients_s_per_row=5e-4, gradients_rss_gb=0.62,
                 mahalanobis_s_per_row=5e-5, zarr_read_gb_s=1.0,
                 zarr_bytes_per_row={"features": 11_060, "gradients": 7_579})
    need = rule_memory(stage_costs(imagenet_workload(), m, Assumptions()))
    assert {"features", "prototypes", "fit_detector", "score", "index_quality", "gradients"} <= set(need)
    for rule, v in need.items():
        assert rule in profile, f"profiles/slurm-imagenet sizes no {rule} (needs {v['host_gb']:.1f} GB: {v['from']})"
        assert profile[rule].get("mem_mb", 0) >= 1.1 * 1000 * v["host_gb"], (rule, v)


def test_slurm_profile_groups_every_submitted_rule():
    """Every rule that runs as a cluster job is in one of profiles/slurm's groups (a rule outside
    them would be one sbatch job per instance: a new per-seed rule would add a submission per seed);
    local rules (``localrule: True``) submit nothing, and the tuning checkpoint's rules are outside
    on purpose (docs/cluster.md)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    grouped = {g.split("=")[0] for g in profile["groups"]}
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    blocks = re.split(r"^\s*(?:rule|checkpoint) (?=\w+:)", text, flags=re.M)[1:]
    submitted = {b.split(":")[0] for b in blocks if "localrule: True" not in b.split("\nrule ")[0]}
    assert {"head", "fit_detector", "score", "features", "train"} <= submitted
    assert "score_local" not in submitted and "fit_local" not in submitted
    outside = submitted - grouped - {"tune", "tuned_detector", "tuned_scores"}
    assert not outside, f"add {sorted(outside)} to the groups of profiles/slurm/config.yaml"
