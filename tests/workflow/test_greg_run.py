"""A GReg+ benchmark through the whole workflow: aux sets prepared, the CE backbone fine-tuned,
scored and tabulated, the aux sets on the data card with their role."""

from __future__ import annotations

import pytest

from conftest import greg_config


@pytest.mark.slow
def test_tiny_greg_plus_benchmark_runs_through_the_workflow(tmp_path):
    """The tiny config plus a GReg+ benchmark: prepare the aux sets, fine-tune the CE backbone,
    score and tabulate; the table has the benchmark, the card lists the aux sets with their role."""
    import json

    import pandas as pd
    import yaml

    from conftest import snakemake

    cfg = greg_config()
    cfg["detectors"] = {"msp": {"method": "msp"}, "energy": {"method": "energy"}}  # fewer jobs
    cfg_file = tmp_path / "greg_tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    snakemake(tmp_path, configfile=cfg_file, timeout=1800)
    res = tmp_path / "results"
    metrics = pd.read_csv(res / "tiny_greg_plus" / "metrics.csv")
    assert set(metrics["detector"]) == {"msp", "energy"}
    assert set(metrics["ood"]) == {"fashion_tiny", "gaussian_tiny"}
    assert "energy" in (res / "tiny_greg_plus" / "results.md").read_text()
    summary = json.loads((res / "tiny_greg_plus" / "seed0" / "train.json").read_text())
    assert summary["history"][0]["sampler_ms_per_step"] > 0
    assert summary["init"]["checkpoint"].endswith("tiny/seed0/model.pt")
    assert len(summary["aux"]) == 2 and summary["test_accuracy"] > 0.5
    card = pd.read_csv(res / "datacard.csv").set_index("name")
    assert card.loc["aux_glyphs", "role_tiny_greg_plus"] == "auxiliary outliers (training only)"
    assert card.loc["aux_scrambled", "role_tiny_greg_plus"] == "auxiliary outliers (training only)"
    assert pd.isna(card.loc["aux_glyphs", "role_tiny"]) or card.loc["aux_glyphs", "role_tiny"] == ""
