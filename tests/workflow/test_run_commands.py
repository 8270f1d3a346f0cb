"""The `grood` command on a real tiny workflow run: `grood score` on the ID test set gives exactly
the scores the pipeline stored; `grood figures` and `grood info` read the run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grood.run.cli import main


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["grood", "msp", "energy"])
def test_score_of_the_id_test_set_equals_the_pipeline(capsys, tiny_run, tmp_path, detector):
    """`grood score` on the ID test set of a finished run: exactly the scores its score jobs stored."""
    run = tiny_run / "results" / "tiny" / "seed0"
    out = tmp_path / "s.csv"
    rc = main(["score", "--run", str(run), "--detector", detector, "--out", str(out),
               str(tiny_run / "resources" / "data" / "mnist_tiny.npz")])
    assert rc == 0, capsys.readouterr().err
    np.testing.assert_array_equal(pd.read_csv(out)["score"].to_numpy(), np.load(run / "scores" / detector / "test.npy"))


@pytest.mark.slow
def test_figures_of_a_tiny_run(capsys, tiny_run, tmp_path):
    assert main(["figures", str(tiny_run / "results" / "tiny"), "--out", str(tmp_path / "fig"),
                 "--data-dir", str(tiny_run / "resources" / "data")]) == 0
    names = {p.name for p in (tmp_path / "fig").iterdir()}
    for stem in ("summary_auroc_heatmap", "summary_near_far", "detector_grood", "detector_msp", "detector_energy",
                 "method_gradient_space", "method_mixup", "training_curves"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names, stem
    assert main(["info", "--run", str(tiny_run / "results" / "tiny" / "seed0")]) == 0
    assert "fashion_tiny" in capsys.readouterr().out
