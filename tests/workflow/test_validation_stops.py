"""The wiring of config validation: a bad config fails while the Snakefile is read, before any job."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import TINY, snakemake


@pytest.mark.slow
def test_workflow_stops_at_validation_before_any_job(tmp_path):
    """The wiring: a bad config (schema-valid, cross-field errors) fails while the Snakefile is read,
    with every message, no job planned and nothing written."""
    cfg = copy.deepcopy(TINY)
    cfg["detectors"]["grood"]["prototype"] = "mixer"
    cfg["benchmarks"]["tiny"]["ood"]["svhn_tiny"] = "far"
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    proc = snakemake(workdir, "--dry-run", configfile=configfile, check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"config was accepted:\n{out[-3000:]}"
    assert "invalid grood config" in out
    assert "detectors.grood.prototype" in out and "benchmarks.tiny.ood.svhn_tiny" in out
    assert "Job stats" not in out and "rule " not in out, f"jobs were planned:\n{out[-3000:]}"
    written = [p for p in workdir.rglob("*") if ".snakemake" not in p.parts] if workdir.exists() else []
    assert not written, written
