"""Shared fixtures: the repository paths, one run of the tiny workflow shared by many tests, and
what a dry run plans (the jobs Snakemake would run, with its reasons)."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


# ------------------------------------------------------------------------- planned jobs (dry runs)

TINY = yaml.safe_load((REPO / "config" / "test.yaml").read_text())

Job = tuple[str, tuple[tuple[str, str], ...]]


def job(rule: str, **wildcards: str) -> Job:
    return rule, tuple(sorted((k, str(v)) for k, v in wildcards.items()))


def parse_dry_run(text: str) -> dict[Job, str]:
    """The jobs a ``snakemake --dry-run`` would run: (rule, sorted wildcards) → Snakemake's reason."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", text):
        m = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        reason = re.search(r"^\s+reason: (.*)$", block, re.M)
        pairs = [kv.split("=", 1) for kv in wc.group(1).split(", ")] if wc else []
        jobs[(m.group(1), tuple(sorted((k, v) for k, v in pairs)))] = reason.group(1) if reason else "?"
    return jobs


def planned(workdir: Path, configfile: Path | None = None, *args: str) -> dict[Job, str]:
    proc = snakemake(workdir, "--dry-run", *args, configfile=configfile, timeout=180)
    return parse_dry_run(proc.stdout)


def write_config(tmp_path: Path, edit) -> Path:
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # keep the key order: see test_reordered_config_*
    return path


def fmt(jobs, reasons: dict[Job, str] | None = None) -> str:
    lines = [f"{r} {dict(w)}" + (f"\n      reason: {reasons[(r, w)][:300]}" if reasons else "")
             for r, w in sorted(jobs)]
    return "\n  ".join(lines) or "(none)"


def assert_plan(got: dict[Job, str], expected: set[Job]) -> None:
    assert set(got) == set(expected), (
        f"\nunexpected (would re-run but should not):\n  {fmt(set(got) - set(expected), got)}"
        f"\nmissing (should re-run but would not):\n  {fmt(set(expected) - set(got))}")


# --------------------------------------------------------------------------------- shared configs

def config_with_shards(**shards) -> dict:
    """config/test.yaml with a kNN detector (k=5) beside GROOD, and ``shards``."""
    config = copy.deepcopy(TINY)
    config["detectors"]["knn"] = {"method": "knn", "k": 5}
    config["shards"] = shards
    return config


def greg_config(**bench_edits) -> dict:
    """config/test.yaml plus a GReg+ benchmark fine-tuning the tiny CE backbone on two aux sets
    (a tiny scrambled MNIST and the glyphs of one font package), after ``bench_edits``."""
    cfg = copy.deepcopy(TINY)
    cfg["datasets"].update({
        "aux_scrambled": {"source": "scrambled_train", "base": "mnist",
                          "base_params": {"max_train": 600}, "n": 300},
        "aux_glyphs": {"source": "font_glyphs", "packages": ["fonts-croscore"], "n": 300},
    })
    cfg["benchmarks"]["tiny_greg_plus"] = {
        "id": "mnist_tiny", "ood": dict(cfg["benchmarks"]["tiny"]["ood"]),
        "aux": ["aux_scrambled", "aux_glyphs"],
        "train": {"arch": "lenet5", "epochs": 1, "batch_size": 32, "lr": 0.001,
                  "method": "greg_plus", "init": "tiny"}}
    cfg["benchmarks"]["tiny_greg_plus"].update(bench_edits)
    return cfg


def same_store(a, b):
    """Two feature stores hold the same arrays, byte for byte, with the same chunks."""
    import zarr

    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    names = sorted(k for k, _ in ga.arrays())
    assert names == sorted(k for k, _ in gb.arrays()) == ["features", "labels", "logits"]
    for k in names:
        x, y = ga[k], gb[k]
        assert x.dtype == y.dtype and x.shape == y.shape and x.chunks == y.chunks
        assert x[...].tobytes() == y[...].tobytes(), k  # byte-identical


def brute_force_topk(queries, vectors, k: int, mask=None):
    """The k nearest rows of every query by float64 ``Σ (q − x)²``, ranked by (distance, row), computed
    in blocks of queries (``mask``: rows left out): the independent reference of the search tests."""
    import numpy as np

    q, x = queries.astype(np.float64), vectors.astype(np.float64)
    d = np.empty((len(q), len(x)))
    step = max(1, (32 << 20) // max(1, x.size * 8))
    for a in range(0, len(q), step):
        d[a : a + step] = np.square(x[None] - q[a : a + step, None]).sum(-1)
    if mask is not None:
        d[:, ~mask] = np.inf
    rows = np.broadcast_to(np.arange(len(x)), d.shape)
    order = np.lexsort((rows, d), axis=1)[:, :k]
    return np.take_along_axis(d, order, 1), order
