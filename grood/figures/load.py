"""Small readers from a finished run's directory to the plain arrays and tables the figures take.

The figure functions never look at paths; these helpers are the only place that knows the layout
(through :mod:`grood.run.finished`), so the evaluate stage can call the figures with what it already holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from grood.run.finished import BenchRun, RunError, SeedRun
from grood.storage import load_npz


def metrics_table(bench: BenchRun) -> pd.DataFrame:
    """The long metrics table (``metrics.csv``): one row per seed, detector and OOD set."""
    return pd.read_csv(bench.metrics_csv)


def ood_groups(long: pd.DataFrame) -> dict[str, str]:
    """OOD set → ``near``/``far``, in the table's order (the config's)."""
    return dict(zip(long["ood"], long["group"]))


def detector_scores(run: SeedRun, detector: str, oods: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A detector's stored ID test scores and each OOD set's, of one seed."""
    def read(part):
        path = run.scores(detector, part)
        if not path.is_file():
            raise RunError(f"{path} does not exist; the run has no {part} scores of {detector!r}")
        return np.load(path, allow_pickle=False)

    return read("test"), {o: read(o) for o in oods}


def histories(bench: BenchRun) -> tuple[dict[int, list[dict]], dict[int, float]]:
    """Per seed: the training history and the test accuracy, from each ``train.json``."""
    return histories_from({run.seed: run.train_json for run in bench.seeds() if run.train_json.is_file()})


def histories_from(train_summaries: dict[int, str | Path]) -> tuple[dict[int, list[dict]], dict[int, float]]:
    """Per seed: the training history and the test accuracy, from the given ``train.json`` files."""
    hist, acc = {}, {}
    for seed, path in train_summaries.items():
        summary = json.loads(Path(path).read_text())
        hist[int(seed)], acc[int(seed)] = summary.get("history", []), summary["test_accuracy"]
    return hist, acc


def gradient_spaces(run: SeedRun) -> list[str]:
    """The gradient stores of a seed (``<source>_<wrt>_T<temperature>``), the default ``mixup_ood_T1``
    first."""
    spaces = sorted(p.name for p in (run.root / "gradients").glob("*") if (p / "train.zarr").exists())
    return sorted(spaces, key=lambda s: s != "mixup_ood_T1")


def projection_sets(run: SeedRun, space: str, ood: str, n: int = 2000, seed: int = 0):
    """Features and gradients of ``n`` random rows of ID train, ID test and ``ood`` (fixed ``seed``),
    the class and OOD prototypes of the space, and its ``wrt``/``temperature`` (from the store's
    attributes, which also name its prototypes file)."""
    import zarr

    parts = {"ID train": "train", "ID test": "test", ood: ood}
    sets = sample_sets({k: run.features(p) for k, p in parts.items()},
                       {k: run.gradients(space, p) for k, p in parts.items()}, n, seed)
    attrs = dict(zarr.open_group(str(run.gradients(space, "train")), mode="r").attrs)
    P, p_ood = prototypes(run.prototypes(Path(attrs["prototypes"]).stem))
    return sets, P, p_ood, attrs.get("wrt", "ood"), float(attrs.get("temperature", 1.0))


def sample_sets(features: dict[str, str | Path], gradients: dict[str, str | Path], n: int = 2000,
                seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Per set (in the given order): ``features`` and ``gradients`` of the same ``n`` random rows
    (fixed ``seed``) of its feature store and gradient store."""
    import zarr

    sets = {}
    rng = np.random.default_rng(seed)
    for label, store in features.items():
        feats = zarr.open_group(str(store), mode="r")["features"]
        grads = zarr.open_group(str(gradients[label]), mode="r")["gradients"]
        rows = np.sort(rng.choice(feats.shape[0], min(n, feats.shape[0]), replace=False))
        sets[label] = {"features": feats.oindex[rows], "gradients": grads.oindex[rows]}
    return sets


def prototypes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The class prototypes ``P`` and the OOD prototype ``p_ood`` of a prototypes file."""
    protos, _ = load_npz(path, ["P", "p_ood"])
    if "P" not in protos or "p_ood" not in protos:
        raise RunError(f"{path} holds no prototypes P / p_ood: not a prototypes file")
    return protos["P"], protos["p_ood"]


def mixup_inputs(bench: BenchRun, run: SeedRun, n: int = 4, data_dir=None, seed: int = 0) -> dict:
    """:func:`mixup_inputs_from` a run's files; the ID dataset as recorded in its feature store."""
    data = bench.resolve_data(run.feature_attrs("train").get("data", ""), data_dir)
    return mixup_inputs_from(run.model, run.prototypes("mixup"), data, n, seed)


def mixup_inputs_from(model_pt, mixup_npz, data_npz, n: int = 4, seed: int = 0) -> dict:
    """What :func:`grood.figures.mixup.mixup_figure` needs: ``n`` ID training images of distinct
    classes (fixed ``seed``), the network, its input spec and classes, and the mix-up prototypes
    with λ and layer."""
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint

    protos, meta = load_npz(mixup_npz, ["Q"])
    if "Q" not in protos:
        raise RunError(f"{mixup_npz} holds no early prototypes Q: not a mix-up prototype file")
    arrays, data_meta = load_npz(data_npz, ["x_train", "y_train", "files_train", "bytes_train"])
    if "x_train" not in arrays and "files_train" not in arrays:
        raise RunError(f"{data_npz} has no training split: the mix-up figure shows ID training images")
    labels = arrays["y_train"]
    rng = np.random.default_rng(seed)
    picked, seen = [], set()
    for i in rng.permutation(len(labels)):
        if int(labels[i]) not in seen:
            picked.append(int(i))
            seen.add(int(labels[i]))
        if len(picked) == n:
            break
    if "files_train" in arrays:  # a file-list dataset: decode just the picked images (sizes may differ)
        from grood.data.filelist import file_list_split

        files, _ = file_list_split(arrays, data_meta, "train", 0, f"{Path(data_npz).name} [train]")
        images = [files.read(i) for i in picked]
    else:
        images = arrays["x_train"][picked]
    model, ck = load_checkpoint(model_pt)
    return {"images": images, "labels": labels[picked], "model": model,
            "spec": InputSpec.from_dict(ck["spec"]), "classes": ck["classes"], "Q": protos["Q"],
            "layer": meta["layer"], "lam": float(meta["lam"])}
