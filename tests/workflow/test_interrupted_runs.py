"""Faults in a real run: a killed run leaves no half-written output under its real name and
``--rerun-incomplete`` rebuilds it; a truncated prepared dataset stops the stage that reads it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import RAW_CACHE, REPO, SNAKEMAKE, job, planned, snakemake, write_config
from grood.storage import CorruptFileError, read_zarr

BENCH, SEED, RUN = "tiny", "0", "results/tiny/seed0"


@pytest.mark.slow
def test_killed_run_recovers_with_rerun_incomplete(tiny_run, tiny_copy, tmp_path):
    """SIGKILL the whole snakemake process group while ``features`` is writing its Zarr store: no
    store with the real name is left, and ``--rerun-incomplete`` rebuilds it (same values)."""
    cfg = write_config(tmp_path, lambda c: c["features"].update(batch_size=8))  # a longer write window
    rel = f"{RUN}/features/train.zarr"
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tiny_copy),
           "--configfile", str(cfg), "--config", f"raw_dir={RAW_CACHE}", "--cores", "2",
           "--force", rel]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    features_dir = tiny_copy / RUN / "features"
    try:
        while not list(features_dir.glob(".train.zarr.tmp-*")):
            assert proc.poll() is None, "snakemake finished before the kill: no write window caught"
            assert time.monotonic() - t0 < 60, "features never started writing"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (tiny_copy / rel).exists(), "a half-written store carries the real name"
    assert list(features_dir.glob(".train.zarr.tmp-*")), "expected the killed writer's leftover"
    assert job("features", bench=BENCH, seed=SEED, part="train") in planned(tiny_copy, cfg, rel)

    # a killed snakemake leaves its lock: the next run says so and names the fix (--unlock) ...
    locked = snakemake(tiny_copy, rel, configfile=cfg, check=False, timeout=120)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(tiny_copy, "--unlock", configfile=cfg, timeout=120)
    # ... and --rerun-incomplete rebuilds the killed job's output
    snakemake(tiny_copy, "--rerun-incomplete", rel, configfile=cfg, timeout=120)
    got, attrs = read_zarr(tiny_copy / rel)
    want, _ = read_zarr(tiny_run / rel)
    assert set(got) == set(want)
    assert not list(features_dir.glob(".train.zarr.tmp-*")), "the dead writer's leftover was not cleaned up"
    for name in want:  # another batch size: equal up to float rounding (exactly equal here on CPU)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert time.monotonic() - t0 < 90


@pytest.mark.slow
def test_corrupt_prepared_dataset_stops_the_stage_that_reads_it(tiny_run, tmp_path):
    """A truncated resources/data/*.npz is never read as a smaller dataset: the stage fails naming it."""
    from grood.pipeline import features_stage, load_split

    src = tiny_run / "resources" / "data" / "gaussian_tiny.npz"
    npz = tmp_path / "gaussian_tiny.npz"
    npz.write_bytes(src.read_bytes()[: src.stat().st_size - 100])
    with pytest.raises(CorruptFileError, match=re.escape(str(npz))):
        load_split(npz, "test")
    with pytest.raises(CorruptFileError, match="Fix: delete it"):
        features_stage(tiny_run / RUN / "model.pt", npz, "test", False, tmp_path / "f.zarr", device="cpu")
    assert not (tmp_path / "f.zarr").exists()
