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


def _job_counts(tmp_path: Path, *config: str) -> dict[str, int]:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
           str(REPO / "Snakefile"), *(("--config", *config) if config else ())]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True).stdout
    table = out.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_default_run_puts_array_jobs_in_process_only_when_asked(tmp_path):
    shape = _job_counts(tmp_path)
    # 23 detectors (the standard and baselines suites) x 3 seeds x 7 parts: ODIN (network), GROOD and
    # kNN (faiss) stay processes
    assert shape["score"] == 3 * 3 * 7 and shape["score_local"] == 20 * 3 * 7
    # every detector without a faiss index is fitted in process, the head detectors (ReAct, ASH,
    # SCALE, DICE, ViM) from the head's arrays, one head job per seed; GROOD and kNN in processes
    assert shape["fit_detector"] == 2 * 3 and shape["fit_local"] == 21 * 3 and shape["head"] == 3
    assert shape["total"] == 640
    every = _job_counts(tmp_path, "in_process=false")
    assert "score_local" not in every and "fit_local" not in every
    assert every["score"] == 23 * 3 * 7 and every["fit_detector"] == 23 * 3 and every["total"] == 640
