"""The baselines suite through the whole workflow on the tiny config (config/test.yaml plus
`suite: [baselines, gaia]`): every new detector is fitted, scored and evaluated, GAIA's statistics are in the
feature stores of the scored parts only, and `grood score` gives exactly the stored ID test scores
for each of them — GAIA's included, whose statistics it computes in its own features pass."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, snakemake
from grood.config import load_suites
from conftest import REPO

pytestmark = pytest.mark.slow  # runs the tiny workflow with 13 more detectors (about a minute)

SUITES = load_suites(REPO / "config" / "suites.yaml")
BASELINES = (*SUITES["baselines"], *SUITES["gaia"])
RUN = "results/tiny/seed0"


@pytest.fixture(scope="module")
def baselines_run(tmp_path_factory):
    cfg = copy.deepcopy(TINY)
    cfg["detectors"] = {"suite": ["baselines", "gaia"], **cfg["detectors"]}
    work = tmp_path_factory.mktemp("baselines_run")
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, configfile=path, timeout=900)
    return work


def test_every_baseline_is_evaluated(baselines_run):
    metrics = pd.read_csv(baselines_run / "results" / "tiny" / "metrics.csv")
    assert list(dict.fromkeys(metrics["detector"])) == [*BASELINES, *TINY["detectors"]]
    assert metrics[["auroc", "fpr95_id"]].notna().all().all() and metrics["auroc"].between(0, 1).all()
    table = (baselines_run / "results" / "tiny" / "results.md").read_text()
    assert "gradorth" in table and "reconstruction" in table  # GradOrth is flagged


def test_gaia_statistics_are_in_the_scored_parts_feature_stores_only(baselines_run):
    import zarr

    for part in ("train", "test", *TINY["benchmarks"]["tiny"]["ood"]):
        group = zarr.open_group(str(baselines_run / RUN / "features" / f"{part}.zarr"), mode="r")
        names = set(group.array_keys())
        if part == "train":
            assert names == {"features", "logits", "labels"}
        else:
            assert names == {"features", "logits", "labels", "gaia_a", "gaia_z"}, part
            assert group["gaia_z"].shape == (group["features"].shape[0], 142)  # LeNet: 6 + 16 + 120 channels


def test_head_detectors_were_fitted_on_the_runs_checkpoint(baselines_run):
    """Fitted from the seed's head.npz (rule head), which records the checkpoint it read and its hash."""
    from grood.detectors.store import read_header
    from grood.storage import sha256_file
    from grood.storage.files import load_npz

    _, head = load_npz(baselines_run / RUN / "head.npz")
    assert head["model"].endswith(f"{RUN}/model.pt")
    assert head["model_sha256"] == sha256_file(baselines_run / RUN / "model.pt")
    for name in ("react", "ash", "scale", "dice", "vim", "vim_var"):
        header = read_header(baselines_run / RUN / "detectors" / f"{name}.npz")
        assert header["provenance"]["head"].endswith(f"{RUN}/head.npz"), name


@pytest.mark.parametrize("detector", BASELINES)
def test_grood_score_gives_the_stored_scores(capsys, baselines_run, tmp_path, detector):
    from grood.run.cli import main

    out = tmp_path / "s.csv"
    rc = main(["score", "--run", str(baselines_run / RUN), "--detector", detector, "--out", str(out),
               str(baselines_run / "resources" / "data" / "mnist_tiny.npz")])
    assert rc == 0, capsys.readouterr().err
    np.testing.assert_array_equal(pd.read_csv(out)["score"].to_numpy(),
                                  np.load(baselines_run / RUN / "scores" / detector / "test.npy"))
