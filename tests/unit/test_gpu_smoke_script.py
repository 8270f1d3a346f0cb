"""tests/gpu/smoke.sh, the GPU smoke test (docs/cluster.md): present, executable, valid bash, strict
mode, and it stops with exit 2 and a message when no GPU is visible, before it does any work."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "gpu" / "smoke.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_script_exists_is_executable_and_parses():
    assert SCRIPT.is_file()
    assert SCRIPT.stat().st_mode & stat.S_IXUSR, "tests/gpu/smoke.sh must be executable"
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_it_checks_what_the_docs_say():
    text = SCRIPT.read_text()
    for needle in ("device", "cuda", "search", "get_num_gpus", "profiles/$profile", "slurm-imagenet",
                   "SMOKE_CPU_ONLY", "SMOKE_AUROC_TOL:-0.5", "exact_kth_distance", "snakemake -n"):
        assert needle in text, needle
    assert "tests/gpu/smoke.sh" in (REPO / "docs" / "cluster.md").read_text()


def test_without_a_gpu_it_fails_clearly_with_exit_2(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (fake / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "SMOKE_DIR": str(tmp_path / "work")}
    env.pop("SMOKE_CPU_ONLY", None)
    done = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no GPU visible" in done.stderr
    assert not (tmp_path / "work" / "data").exists()  # stopped before building anything
