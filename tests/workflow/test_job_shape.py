"""The shape of the default run's jobs: the array-only work runs inside the Snakemake process (rules
score_local, fit_local) unless ``in_process: false``; every other rule is its own process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # starts Snakemake (a dry run)


def _job_counts(tmp_path: Path, *args: str) -> dict[str, int]:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
           str(REPO / "Snakefile"), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True).stdout
    table = out.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_default_run_puts_array_jobs_in_process_only_when_asked(tmp_path):
    shape = _job_counts(tmp_path)
    # the standard twelve x 3 seeds x 7 parts: ODIN (network), GROOD and kNN (faiss) stay processes
    assert shape["score"] == 3 * 3 * 7 and shape["score_local"] == 9 * 3 * 7
    # every detector without a faiss index is fitted in process (Mahalanobis from the training arrays,
    # the others store their parameters); GROOD and kNN build their index in processes
    assert shape["fit_detector"] == 2 * 3 and shape["fit_local"] == 10 * 3 and "head" not in shape
    assert shape["total"] == 366
    every = _job_counts(tmp_path, "--config", "in_process=false")
    assert "score_local" not in every and "fit_local" not in every
    assert every["score"] == 12 * 3 * 7 and every["fit_detector"] == 12 * 3 and every["total"] == 366


def test_the_baselines_config_fits_its_head_detectors_in_process_from_one_head_job_per_seed(tmp_path):
    """config/baselines.yaml (23 detectors): ReAct, ASH, SCALE, DICE and ViM fit in process from the
    head's arrays, written by one head job per seed; nothing of theirs starts a process."""
    shape = _job_counts(tmp_path, "--configfile", str(REPO / "config" / "baselines.yaml"))
    assert shape["score"] == 3 * 3 * 7 and shape["score_local"] == 20 * 3 * 7
    assert shape["fit_detector"] == 2 * 3 and shape["fit_local"] == 21 * 3 and shape["head"] == 3
    assert shape["total"] == 644
