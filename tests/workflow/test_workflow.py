"""The whole DAG on the tiny config: every stage runs, outputs are complete and consistent."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grood.evaluation.metrics import METRICS, ood_metrics
from grood.storage import read_zarr

pytestmark = pytest.mark.slow


def test_tiny_run_produces_results(tiny_run):
    res = tiny_run / "results" / "tiny"
    metrics = pd.read_csv(res / "metrics.csv")
    assert set(metrics["detector"]) == {"grood", "msp", "energy"}
    assert set(metrics["ood"]) == {"fashion_tiny", "gaussian_tiny"}
    assert set(metrics["group"]) == {"near", "far"}
    for m in METRICS:
        assert metrics[m].between(0, 1).all(), m
    figures = ["summary_auroc_heatmap", "summary_near_far", "training_curves", "detector_grood", "detector_msp",
               "detector_energy", "method_gradient_space", "method_mixup"]
    for name in ("summary.csv", "results.md", "results.tex", *(f"figures/{f}.{ext}" for f in figures
                                                              for ext in ("png", "pdf"))):
        assert (res / name).stat().st_size > 0, name
    assert sorted(p.name for p in (res / "figures").iterdir()) == sorted(f"{f}.{e}" for f in figures
                                                                        for e in ("png", "pdf"))
    md = (res / "results.md").read_text()
    assert "fpr95_id" in md and "near" in md and "grood" in md


def test_report_bundles_every_figure_with_its_caption_summary_first(tiny_run, tmp_path):
    """`snakemake --report` holds every figure PNG with its caption; its menu (categories sorted by
    name, as Snakemake's report sorts them) opens with the summary: heatmap first."""
    import re

    from conftest import snakemake

    html = tmp_path / "report.html"
    snakemake(tiny_run, "--report", str(html), timeout=300)
    text = html.read_text()
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", text).group(1))
    results = json.loads(re.search(r"var results = (\{.*?\});\n", text).group(1))
    menu = sorted(categories)
    assert menu == ["1 Summary", "2 Detectors", "3 Method", "4 Training", "Data"]
    shown = [Path(p).name for c in menu for sub in sorted(categories[c]) for p in categories[c][sub]]
    assert shown[:2] == ["summary_auroc_heatmap.png", "summary_near_far.png"]
    figures = sorted(p.name for p in (tiny_run / "results" / "tiny" / "figures").glob("*.png"))
    assert sorted(shown) == sorted([*figures, "datacard.png"])
    for path, item in results.items():  # each figure's caption from workflow/report/, not an empty one
        assert "What to look for" in item["caption"] or path.endswith("datacard.png"), path


def test_detectors_are_stored_without_pickle(tiny_run):
    """The run holds no pickle: each fitted detector is a grood detector file that loads checked."""
    from grood.detectors.store import load_detector

    run = tiny_run / "results" / "tiny" / "seed0"
    assert not list(tiny_run.joinpath("results").rglob("*.pkl"))
    for name in ("grood", "msp", "energy"):
        assert type(load_detector(run / "detectors" / f"{name}.npz")).__name__.lower() == name


def test_metrics_recomputed_from_scores(tiny_run):
    """The table is what the per-sample scores say: recompute one row from the stored scores."""
    res = tiny_run / "results" / "tiny"
    metrics = pd.read_csv(res / "metrics.csv").set_index(["seed", "detector", "ood"])
    id_scores = np.load(res / "seed0" / "scores" / "grood" / "test.npy")
    ood_scores = np.load(res / "seed0" / "scores" / "grood" / "gaussian_tiny.npy")
    row = metrics.loc[(0, "grood", "gaussian_tiny")]
    for k, v in ood_metrics(id_scores, ood_scores).items():
        assert row[k] == pytest.approx(v, abs=1e-6)


def test_stage_outputs_are_consistent(tiny_run):
    run = tiny_run / "results" / "tiny" / "seed0"
    summary = json.loads((run / "train.json").read_text())
    assert 0.5 < summary["test_accuracy"] <= 1.0  # 600 images, 3 epochs (≈ 0.8): far above chance (0.1)
    feats, attrs = read_zarr(run / "features" / "test.zarr")
    assert feats["features"].shape[0] == feats["logits"].shape[0] == 200
    assert attrs["model_sha256"] and attrs["grood_version"]
    grads, gattrs = read_zarr(run / "gradients" / "mixup_ood_T1" / "test.zarr")
    assert grads["gradients"].shape == feats["features"].shape
    # ‖∂ℓ/∂p_ood‖ = π_ood (T = 1): the stored gradient and the stored softmax agree
    np.testing.assert_allclose(np.linalg.norm(grads["gradients"], axis=1), grads["pi_ood"], rtol=1e-4)
    protos = np.load(run / "prototypes" / "mixup.npz")
    assert protos["P"].shape == (10, feats["features"].shape[1])
    assert np.isfinite(protos["p_ood"]).all()
    scores = np.load(run / "scores" / "msp" / "test.npy")
    assert scores.shape == (200,) and np.all((scores > 0) & (scores <= 1))
    leftovers = [p for p in (tiny_run / "results").rglob("*") if ".tmp-" in p.name]
    assert not leftovers, leftovers


def test_approximate_detector_gets_an_index_quality_report(tmp_path):
    """The tiny config plus a GROOD detector on an IVF-Flat index: its index_quality job runs and
    evaluate tabulates recall@1 and the AUROC change per OOD set (exact detectors get none)."""
    import yaml

    from conftest import REPO, snakemake

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["detectors"] = {"grood": {"method": "grood", "k": 1},
                           "grood_ivf": {"method": "grood", "k": 1, "index": {"kind": "ivf_flat", "nlist": 8, "nprobe": 2}}}
    config["index_quality"] = {"sample": 100}
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake(tmp_path, configfile=configfile)
    res = tmp_path / "results" / "tiny"
    assert sorted(p.name for p in (res / "seed0" / "index_quality").iterdir()) == ["grood_ivf.json"]
    table = pd.read_csv(res / "index_quality.csv")
    assert set(table["ood"]) == {"fashion_tiny", "gaussian_tiny"} and set(table["detector"]) == {"grood_ivf"}
    assert table["recall_at_k"].between(0, 1).all() and (table["queries"] == 200).all()
    assert "Approximate indexes" in (res / "results.md").read_text()


def test_in_process_jobs_run_in_the_snakemake_process(tiny_run):
    """score_local and fit_local jobs run in threads of one Snakemake process (profiles/default's
    force-use-threads); were each spawned as its own Snakemake process, they would cost more than the
    script jobs they replace."""
    logs = sorted((tiny_run / "results" / "logs").rglob("score_local/**/*.log")) + \
        sorted((tiny_run / "results" / "logs").rglob("fit_local/**/*.log"))
    assert len(logs) >= 4, logs
    pids = set()
    for log in logs:
        found = re.findall(r"in-process job: process (\d+), thread \d+", log.read_text())
        assert len(found) == 1, (log, log.read_text())
        pids.add(found[0])
    assert len(pids) == 1, f"in-process jobs ran in {len(pids)} processes: {sorted(pids)}"
