"""Sharded runs: the dry run plans shard and gather jobs (row shards of features and scores, index
shards of k-NN detectors), and a sharded run gives the unsharded run's arrays and metrics."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml
import zarr

from conftest import RAW_CACHE, REPO, config_with_shards, same_store, snakemake
from grood.stages.fit_detector import fit_detector_stage
from grood.stages.score import score_stage
from grood.storage.shards import row_ranges


# `--config` given twice: the last wins, so repeat the raw cache that conftest's helper sets
SHARDS = "shards={features: 3, score: 2}"


@pytest.mark.slow
def test_dry_run_shows_shard_jobs(tmp_path):
    out = snakemake(tmp_path, "-n", "--config", f"raw_dir={RAW_CACHE}", SHARDS).stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    parts, seeds = 4, 1  # train, test and two OOD sets; one seed
    assert int(counts["features"]) == 3 * parts * seeds
    assert int(counts["features_gather"]) == parts * seeds
    assert int(counts["score"]) == 2 * 3 * 3  # 2 shards × 3 detectors × (test + 2 OOD sets)
    assert int(counts["score_gather"]) == 3 * 3
    assert "shards/features/train/2-of-3.zarr" in out
    # the default config is unchanged: no shard or gather jobs
    plain = snakemake(tmp_path, "-n").stdout
    assert "features_gather" not in plain and "score_gather" not in plain and "shards/" not in plain


@pytest.mark.slow
def test_sharded_workflow_matches_unsharded(tiny_run, tmp_path):
    """The tiny run's model and data, re-run from features on with shards: identical arrays."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    seed_dir = run / "results" / "tiny" / "seed0"
    for sub in ("features", "prototypes", "gradients", "detectors", "scores"):
        shutil.rmtree(seed_dir / sub)
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["shards"] = {"features": 3, "score": 2}
    (tmp_path / "sharded.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # same params
    ref = tiny_run / "results" / "tiny" / "seed0"
    # all four feature stores; scores of each detector on some parts (fewer jobs on a small CPU)
    scores = ["grood/test.npy", "grood/fashion_tiny.npy", "msp/test.npy", "energy/gaussian_tiny.npy"]
    targets = [str((ref / "features" / f"{p}.zarr").relative_to(tiny_run))
               for p in ("train", "test", "fashion_tiny", "gaussian_tiny")]
    targets += [str((ref / "scores" / s).relative_to(tiny_run)) for s in scores]
    # mtime only: the copied model and data stay valid even if grood/ was edited since the fixture ran
    proc = snakemake(run, *targets, "--rerun-triggers", "mtime", configfile=tmp_path / "sharded.yaml")
    assert "rule train" not in proc.stdout + proc.stderr  # the model is reused
    stores = sorted(p.name for p in (ref / "features").glob("*.zarr"))
    assert stores == ["fashion_tiny.zarr", "gaussian_tiny.zarr", "test.zarr", "train.zarr"]
    for name in stores:
        same_store(ref / "features" / name, seed_dir / "features" / name)
        attrs = dict(zarr.open_group(str(seed_dir / "features" / name), mode="r").attrs)
        assert attrs["sharded_from"]["count"] == 3
        # rows from the part's length aligned to the batch of 128: 600 train rows are really split,
        # 200-row parts make one block (two empty shards, merged all the same)
        n = {"train.zarr": 600}.get(name, 200)
        assert [tuple(r) for r in attrs["sharded_from"]["rows"]] == row_ranges(n, 3, 128)
    for rel in scores:
        a, b = np.load(ref / "scores" / rel), np.load(seed_dir / "scores" / rel)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), rel
    assert not (seed_dir / "shards").exists() or not any((seed_dir / "shards").rglob("*.npz"))  # temp()


def _counts(out):
    import re

    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", out, re.M) if rule != "total"}


@pytest.mark.slow
def test_dry_run_plans_index_shard_jobs(tmp_path):
    import yaml

    from conftest import snakemake

    plans = {}
    for n in (1, 3):
        (tmp_path / f"{n}.yaml").write_text(yaml.safe_dump(config_with_shards(index=n), sort_keys=False))
        plans[n] = snakemake(tmp_path, "-n", configfile=tmp_path / f"{n}.yaml").stdout
    plain, sharded = _counts(plans[1]), _counts(plans[3])
    seeds, parts, index_detectors = 1, 3, 2  # test + two OOD sets; grood and knn
    assert sharded.pop("search_index_shard") == 3 * seeds * index_detectors * parts
    assert sharded == plain  # nothing else changes
    for det in ("grood", "knn"):
        for i in range(3):
            assert f"shards/index/{det}/fashion_tiny/{i}-of-3.npz" in plans[3]
    assert "shards/index/msp" not in plans[3] and "search_index_shard" not in plans[1]


@pytest.mark.slow
def test_index_sharded_run_matches_unsharded(tiny_run, tmp_path):
    """The tiny run re-fitted and re-scored with shards.index: 2 (kNN added): GROOD's AUROCs equal
    the unsharded run's, kNN's those of its unsharded stages, to 1e-6."""
    import shutil

    import pandas as pd
    import yaml

    from conftest import snakemake
    from grood.evaluation.metrics import ood_metrics

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    seed_dir = run / "results" / "tiny" / "seed0"
    for sub in ("detectors", "scores"):
        shutil.rmtree(seed_dir / sub)
    (run / "results" / "tiny" / "metrics.csv").unlink()  # else mtime sees an up-to-date target
    (tmp_path / "sharded.yaml").write_text(yaml.safe_dump(config_with_shards(index=2), sort_keys=False))
    # mtime only: the copied model and stores stay valid even if grood/ was edited since the fixture ran
    proc = snakemake(run, "results/tiny/metrics.csv", "--rerun-triggers", "mtime",
                     configfile=tmp_path / "sharded.yaml")
    log = proc.stdout + proc.stderr
    assert "rule search_index_shard" in log and "rule features" not in log and "rule train" not in log
    got = pd.read_csv(run / "results" / "tiny" / "metrics.csv").set_index(["detector", "ood"])["auroc"]
    ref = pd.read_csv(tiny_run / "results" / "tiny" / "metrics.csv").set_index(["detector", "ood"])["auroc"]
    for ood in ("fashion_tiny", "gaussian_tiny"):
        assert abs(got[("grood", ood)] - ref[("grood", ood)]) <= 1e-6
        for det in ("msp", "energy"):  # untouched detectors: the very same numbers
            assert got[(det, ood)] == ref[(det, ood)]
    # kNN unsharded, stage by stage on the run's feature stores
    features = tiny_run / "results" / "tiny" / "seed0" / "features"
    fit_detector_stage("knn", {"k": 5}, [features / "train.zarr"], tmp_path / "knn.npz")
    scores = {}
    for part in ("test", "fashion_tiny", "gaussian_tiny"):
        score_stage(tmp_path / "knn.npz", [features / f"{part}.zarr"], tmp_path / f"{part}.npy")
        scores[part] = np.load(tmp_path / f"{part}.npy")
    for ood in ("fashion_tiny", "gaussian_tiny"):
        assert abs(got[("knn", ood)] - ood_metrics(scores["test"], scores[ood])["auroc"]) <= 1e-6
    assert not any((seed_dir / "shards").rglob("*.npz"))  # temp()
