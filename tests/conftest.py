"""Shared fixtures: the repository paths, and one run of the tiny workflow shared by many tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RAW_CACHE = Path(os.environ.get("GROOD_RAW_DIR", REPO / "resources" / "raw"))
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, check: bool = True,
              timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` (downloads cached in the shared raw cache)."""
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile or REPO / "config" / "test.yaml"),
           "--config", f"raw_dir={RAW_CACHE}", "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config run once end to end; tests read its results but must not modify them."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    snakemake(workdir)
    return workdir


@pytest.fixture
def tiny_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the finished tiny run (with Snakemake's metadata), for tests that change it."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, symlinks=True)
    return dst
