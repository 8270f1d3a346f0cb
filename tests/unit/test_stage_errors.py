"""Stage errors: bad input reaching a stage at run time stops it with an error naming the input,
and leaves no output: images of the wrong shape or type, empty datasets, non-finite features,
gradients or scores (never a silent AUROC over NaN), a crafted detector file (never run)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from grood.storage import read_zarr, save_npz, write_zarr

RUN = "results/tiny/seed0"


@pytest.fixture(scope="module")
def tiny_model(tiny_run) -> Path:
    return tiny_run / RUN / "model.pt"


@pytest.mark.slow
@pytest.mark.parametrize("images, needle", [
    (np.zeros((5, 28, 28, 2), np.uint8), "C in 1/3/4"),
    (np.zeros((5, 28, 20), np.uint8), "must be square"),
    (np.zeros((5, 28, 28), np.float32), "expected uint8"),
    (np.zeros((5, 2, 28, 28, 1), np.uint8), "expected images shaped"),
], ids=["two-channels", "not-square", "float-pixels", "5d"])
def test_features_refuse_images_of_the_wrong_shape(tiny_model, tmp_path, images, needle):
    from grood.pipeline import features_stage

    npz = tmp_path / "bad.npz"
    save_npz(npz, {"x_test": images, "y_test": np.zeros(len(images), np.int64)})
    with pytest.raises(ValueError, match=needle):
        features_stage(tiny_model, npz, "test", False, tmp_path / "bad.zarr", device="cpu")
    assert not (tmp_path / "bad.zarr").exists()


@pytest.mark.slow
def test_features_convert_other_sizes_and_channels(tiny_model, tmp_path):
    """Foreign sets in another size or colour are converted (documented), not refused."""
    from grood.pipeline import features_stage

    npz = tmp_path / "rgb.npz"
    rng = np.random.default_rng(0)
    save_npz(npz, {"x_test": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
                   "y_test": np.full(6, -1, np.int64)})
    features_stage(tiny_model, npz, "test", False, tmp_path / "rgb.zarr", device="cpu")
    assert read_zarr(tmp_path / "rgb.zarr")[0]["features"].shape[0] == 6


@pytest.mark.slow
def test_features_refuse_an_empty_split(tiny_model, tmp_path):
    from grood.pipeline import features_stage

    npz = tmp_path / "empty.npz"
    save_npz(npz, {"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.int64)})
    with pytest.raises(ValueError, match="empty"):
        features_stage(tiny_model, npz, "test", False, tmp_path / "empty.zarr", device="cpu")
    assert not (tmp_path / "empty.zarr").exists()


def test_empty_user_dataset_is_refused_when_prepared(tmp_path):
    from grood.data import DataError
    from grood.pipeline import prepare_dataset_stage

    path = tmp_path / "mine.npz"
    np.savez(path, images=np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"datasets\.mine.*no images"):
        prepare_dataset_stage("mine", {"source": "npz", "path": str(path)}, tmp_path / "raw", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def _features_store(path: Path, n: int = 40, bad: float | None = None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 8)).astype(np.float32)
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    labels = logits.argmax(1).astype(np.int64)
    if bad is not None:
        feats[3, 2] = bad
        logits[5, 1] = bad
    write_zarr(path, {"features": feats, "logits": logits, "labels": labels})
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("method", ["msp", "energy", "knn"])
def test_score_stage_refuses_non_finite_features(tmp_path, method, bad):
    from grood.pipeline import fit_detector_stage, score_stage

    train = _features_store(tmp_path / "train.zarr")
    ood = _features_store(tmp_path / "ood.zarr", bad=bad, seed=1)
    params = {"k": 1} if method == "knn" else {}
    fit_detector_stage(method, params, [train], tmp_path / "det.npz")
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_stage(tmp_path / "det.npz", [ood], tmp_path / "ood.npy")
    assert not (tmp_path / "ood.npy").exists()


def test_fit_refuses_non_finite_training_features(tmp_path):
    from grood.pipeline import fit_detector_stage

    train = _features_store(tmp_path / "train.zarr", bad=np.nan)
    with pytest.raises((FloatingPointError, ValueError), match="(?i)non-finite|nan"):
        fit_detector_stage("knn", {"k": 1}, [train], tmp_path / "det.npz")
    assert not (tmp_path / "det.npz").exists()


def test_grood_refuses_non_finite_gradients(tmp_path):
    """NaN features → NaN gradients (stored as computed) → GROOD refuses to fit or score them."""
    from grood.pipeline import fit_detector_stage, gradients_stage, score_stage

    rng = np.random.default_rng(0)
    save_npz(tmp_path / "protos.npz", {"P": rng.normal(size=(10, 8)).astype(np.float32),
                                       "p_ood": np.zeros(8, np.float32)}, {"uses_ood_data": False})
    for part, bad in (("train", None), ("ood", np.nan), ("bad_train", np.inf)):
        _features_store(tmp_path / f"{part}.zarr", bad=bad, seed=len(part))
        gradients_stage(tmp_path / f"{part}.zarr", tmp_path / "protos.npz", "ood", 1.0,
                        tmp_path / f"g_{part}.zarr", batch_size=16)
    fit_detector_stage("grood", {"k": 1}, [tmp_path / "train.zarr", tmp_path / "g_train.zarr"], tmp_path / "g.npz")
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_stage(tmp_path / "g.npz", [tmp_path / "g_ood.zarr"], tmp_path / "g_ood.npy")
    assert not (tmp_path / "g_ood.npy").exists()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit_detector_stage("grood", {"k": 1}, [tmp_path / "bad_train.zarr", tmp_path / "g_bad_train.zarr"],
                           tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


class _Trap:
    """Unpickling this creates ``marker``: proof that a stage ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_file(path: Path, marker: Path) -> None:
    import pickle

    path.write_bytes(pickle.dumps({"detector": _Trap(marker), "method": "knn"}))


def _object_entry(path: Path, marker: Path) -> None:
    """The stored detector with its faiss index swapped for an object array (a pickle inside)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    with open(path, "wb") as f:
        np.savez(f, **{**entries, "index_": trap})
    assert json.loads(str(entries["__meta__"]))["state"]["index_"] == "faiss"


@pytest.mark.parametrize("craft", [_pickle_file, _object_entry], ids=["pickle", "object_array"])
def test_score_stage_refuses_a_crafted_detector_file(tmp_path, craft):
    """A detector file that would run code when unpickled is refused by name; nothing runs, no scores."""
    from grood.detectors.store import DetectorFileError
    from grood.pipeline import fit_detector_stage, score_stage

    train = _features_store(tmp_path / "train.zarr")
    test = _features_store(tmp_path / "test.zarr", seed=1)
    det = tmp_path / "detectors" / "knn.npz"
    fit_detector_stage("knn", {"k": 1}, [train], det)
    score_stage(det, [test], tmp_path / "ok.npy")  # the genuine file scores
    marker = tmp_path / "pwned"
    craft(det, marker)
    with pytest.raises(DetectorFileError, match=re.escape(f"{det}: refused: ") + ".*Fix: "):
        score_stage(det, [test], tmp_path / "test.npy")
    assert not marker.exists() and not (tmp_path / "test.npy").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_evaluate_refuses_non_finite_scores(tmp_path, bad):
    """Never a silent AUROC over NaN: evaluate stops and writes no table."""
    from grood.pipeline import evaluate_stage
    from grood.storage import save_json

    rng = np.random.default_rng(0)
    scores = {"test": rng.normal(1, 1, 50), "far_set": rng.normal(0, 1, 50)}
    scores["far_set"][7] = bad
    layout = []
    for part, s in scores.items():
        np.save(tmp_path / f"{part}.npy", s)
        layout.append({"seed": 0, "detector": "msp", "part": part, "path": str(tmp_path / f"{part}.npy")})
    save_json(tmp_path / "train.json", {"test_accuracy": 0.9})
    outputs = {k: str(tmp_path / "out" / name) for k, name in
               [("metrics_csv", "metrics.csv"), ("summary_csv", "summary.csv"), ("table_md", "results.md"),
                ("table_tex", "results.tex")]}
    with pytest.raises(FloatingPointError, match=r"far_set\.npy: 1 non-finite"):
        evaluate_stage("b", layout, {0: str(tmp_path / "train.json")}, {"far_set": "far"},
                       {"msp": {"reconstruction": False, "uses_ood_data": False}}, outputs)
    assert not (tmp_path / "out" / "metrics.csv").exists()
