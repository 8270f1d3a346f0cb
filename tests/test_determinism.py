"""Determinism on CPU: the same config gives the same weights, stores, scores and metrics.

The slow test runs the tiny config a second time in another directory and compares it with the
shared ``tiny_run`` — metrics.csv byte for byte, every array exactly.  Provenance metadata (creation
times) is allowed to differ; nothing numeric is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import snakemake
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
    snakemake(second)
    diffs = _differences(tiny_run, second)
    assert not diffs, "the second run differs:\n  " + "\n  ".join(diffs)
    n_stores = len(list((tiny_run / RUN).glob("*/**/*.zarr")))
    assert n_stores == 8, n_stores  # 4 feature + 4 gradient stores were compared


def _tiny_training_set(n: int = 256):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), n // 4)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for c in range(4):  # a bright square per class: learnable in one epoch
        x[y == c, 4 + 5 * c : 9 + 5 * c, 4:12] = 250
    return x, y


@pytest.mark.slow  # trains twice
@pytest.mark.parametrize("arch,precision", [("lenet5", "fp32"), ("cnn_bn_gap", "bf16")])
def test_training_is_reproducible_in_process(arch, precision):
    """Same seed and thread count → identical weights (fp32, and bf16 autocast on CPU); another
    seed → different weights (the seed is really used)."""
    from grood.net.device import set_threads
    from grood.net.training import TrainConfig, train

    set_threads(2)
    x, y = _tiny_training_set()

    def weights(seed):
        cfg = TrainConfig.from_dict({"arch": arch, "width": 4 if arch == "cnn_bn_gap" else None, "epochs": 1,
                                     "batch_size": 32, "lr": 0.05, "precision": precision, "seed": seed,
                                     "augment": "crop_flip"})
        return train(x, y, cfg, torch.device("cpu")).model.state_dict()

    a, b, c = weights(0), weights(0), weights(1)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_features_do_not_depend_on_the_batch_size():
    """The same images give the same features whether they are pushed through in batches of 8 or 128
    (so a rerun with another ``features.batch_size`` reproduces the stores)."""
    from grood.net.device import set_threads
    from grood.net.forward import forward_batches
    from grood.net.training import TrainConfig, train

    set_threads(2)
    x, y = _tiny_training_set(128)
    cfg = TrainConfig.from_dict({"arch": "lenet5", "epochs": 1, "batch_size": 32, "lr": 0.05,
                                 "precision": "fp32", "seed": 0})
    result = train(x, y, cfg, torch.device("cpu"))
    small = forward_batches(result.model, x, result.spec, torch.device("cpu"), batch_size=8)
    large = forward_batches(result.model, x, result.spec, torch.device("cpu"), batch_size=128)
    for k in ("features", "logits"):
        np.testing.assert_allclose(small[k], large[k], rtol=1e-5, atol=1e-5, err_msg=k)
