"""Tuning on validation data, through the workflow: the tiny config with validation data and two
swept detectors, run once end to end; then what a dry run plans when one grid point is added (only
that point's jobs, and the choice after it), and what the run wrote (tuning.csv, the chosen point's
scores as the detector's, the intervals and tie marks of results.md)."""

from __future__ import annotations

import copy
import filecmp
import shutil

import pandas as pd
import pytest
import yaml

from conftest import TINY, job, planned, snakemake

pytestmark = pytest.mark.slow  # every test here starts snakemake

BENCH, SEED = "tiny", "0"
OODS = tuple(TINY["benchmarks"]["tiny"]["ood"])
VAL = "bernoulli_val"
#: the swept detectors: kNN's k, and GROOD's k with the prototype source (mix-up, or OOD validation images)
SWEEPS = {"knn": {"method": "knn", "sweep": {"k": [1, 5]}},
          "grood_tuned": {"method": "grood", "sweep": {"k": [1, 3], "prototype": ["mixup", "ood_val"]}}}


def tuned_config(edit=None) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["datasets"][VAL] = {"source": "noise", "kind": "bernoulli", "n": 200, "seed": 8}
    cfg["datasets"]["proto_val"] = {"source": "noise", "kind": "bernoulli", "n": 100, "seed": 9}
    cfg["prototypes"]["ood_val_dataset"] = "proto_val"
    cfg["benchmarks"][BENCH].update(id_val={"fraction": 0.2}, ood_val=[VAL])
    cfg["detectors"].update(copy.deepcopy(SWEEPS))
    if edit:
        edit(cfg)
    return cfg


def write(tmp_path, cfg, name="tuned.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tuned_run")
    snakemake(workdir, configfile=write(workdir, tuned_config(), "config.yaml"), timeout=1800)
    return workdir


def test_adding_one_grid_point_plans_only_that_points_jobs(tuned_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tuned_run, run, symlinks=True)
    assert planned(run, write(tmp_path, tuned_config(), "same.yaml")) == {}  # finished: nothing to do
    cfg = write(tmp_path, tuned_config(lambda c: c["detectors"]["knn"]["sweep"]["k"].append(9)))
    got = planned(run, cfg)
    w = {"bench": BENCH, "seed": SEED}
    work = {j for j in got if j[0] in ("prepare_dataset", "train", "features", "prototypes", "gradients",
                                       "fit_detector", "score")}
    assert work == {job("fit_detector", detector="knn~k=9", **w),
                    job("score", detector="knn~k=9", part="id_val", **w),
                    job("score", detector="knn~k=9", part=VAL, **w)}, sorted(got)
    # the choice is made again (it may change), and what reads it: never the other detector's
    assert {j for j in got if j[0] == "tune"} == {job("tune", detector="knn", **w)}
    assert not any(dict(j[1]).get("detector", "").startswith("grood") for j in got), sorted(got)


def test_the_chosen_points_test_scores_are_the_detectors(tuned_run):
    seed_dir = tuned_run / "results" / BENCH / f"seed{SEED}"
    for det, n_points in (("knn", 2), ("grood_tuned", 4)):
        table = pd.read_csv(seed_dir / "tuning" / f"{det}.csv")
        assert len(table) == n_points and table["chosen"].sum() == 1
        assert table.loc[table["chosen"], "val_auroc"].item() == table["val_auroc"].max()
        chosen = table.loc[table["chosen"], "point"].item()
        for part in ("test", *OODS):
            assert filecmp.cmp(seed_dir / "scores" / det / f"{part}.npy", seed_dir / "scores" / chosen / f"{part}.npy",
                               shallow=False)
        assert filecmp.cmp(seed_dir / "detectors" / f"{det}.npz", seed_dir / "detectors" / f"{chosen}.npz",
                           shallow=False)
        # a point that was not chosen never scored a test part
        others = set(table["point"]) - {chosen}
        assert not any((seed_dir / "scores" / p / "test.npy").exists() for p in others)
    bench = tuned_run / "results" / BENCH
    assert len(pd.read_csv(bench / "tuning.csv")) == 6
    md = (bench / "results.md").read_text()
    assert "## Tuning: the grid point chosen on validation data" in md and "Intervals: 95% percentile" in md
    long = pd.read_csv(bench / "metrics.csv")
    assert {"auroc_ci_low", "auroc_ci_high", "fpr95_id_ci_high", "tuned"} <= set(long.columns)
    assert set(long["detector"]) == {"grood", "msp", "energy", "knn", "grood_tuned"}
    card = (tuned_run / "results" / "datacard.md").read_text()
    assert "ID validation (tuning)" in card and "OOD validation (tuning)" in card
