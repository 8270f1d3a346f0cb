"""Determinism on CPU, end to end: the tiny config run a second time in another directory, with
every job in its own process (``in_process: false``), gives the shared ``tiny_run``'s metrics.csv
byte for byte and every array exactly.  Provenance metadata
(creation times) is allowed to differ; nothing numeric is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import RAW_CACHE, snakemake
from grood.storage import load_npz, read_zarr


RUN = Path("results/tiny/seed0")


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _differences(a_root: Path, b_root: Path) -> list[str]:
    """Every numeric output of run ``a`` compared with run ``b``: a list of what differs."""
    diffs: list[str] = []

    def same_arrays(name: str, a: dict, b: dict) -> None:
        if set(a) != set(b):
            diffs.append(f"{name}: arrays {sorted(a)} vs {sorted(b)}")
            return
        for k in a:
            x, y = np.asarray(a[k]), np.asarray(b[k])
            if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=True):
                err = np.abs(x.astype(np.float64) - y.astype(np.float64)).max() if x.shape == y.shape else "shape"
                diffs.append(f"{name}[{k}]: differs (max abs diff {err})")

    for rel in ("results/tiny/metrics.csv", "results/tiny/summary.csv", "results/tiny/results.md",
                "results/datacard.csv"):
        if (a_root / rel).read_bytes() != (b_root / rel).read_bytes():
            diffs.append(f"{rel}: differs")
    for npz in sorted((a_root / "resources" / "data").glob("*.npz")):
        same_arrays(f"resources/data/{npz.name}", load_npz(npz)[0], load_npz(b_root / "resources/data" / npz.name)[0])
    sa, sb = _state_dict(a_root / RUN / "model.pt"), _state_dict(b_root / RUN / "model.pt")
    same_arrays("model.pt state_dict", {k: v.numpy() for k, v in sa.items()}, {k: v.numpy() for k, v in sb.items()})
    for store in sorted((a_root / RUN).glob("*/**/*.zarr")):
        rel = store.relative_to(a_root)
        same_arrays(str(rel), read_zarr(store)[0], read_zarr(b_root / rel)[0])
    for npz in sorted((a_root / RUN / "prototypes").glob("*.npz")):
        rel = npz.relative_to(a_root)
        same_arrays(str(rel), load_npz(npz)[0], load_npz(b_root / rel)[0])
    for npy in sorted((a_root / RUN / "scores").glob("*/*.npy")):
        rel = npy.relative_to(a_root)
        same_arrays(str(rel), {"scores": np.load(npy)}, {"scores": np.load(b_root / rel)})
    return diffs


@pytest.mark.slow
def test_two_tiny_runs_are_identical(tiny_run, tmp_path_factory):
    second = tmp_path_factory.mktemp("tiny_run_again")
    # every job its own process: the same bits (the second --config replaces the first: repeat raw_dir)
    snakemake(second, "--config", f"raw_dir={RAW_CACHE}", "in_process=false")
    diffs = _differences(tiny_run, second)
    assert not diffs, "the second run differs:\n  " + "\n  ".join(diffs)
    n_stores = len(list((tiny_run / RUN).glob("*/**/*.zarr")))
    assert n_stores == 12, n_stores  # 4 feature, 4 gradient and 4 early-prototype stores were compared
