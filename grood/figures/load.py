"""Small readers from a run's files to the plain arrays and tables the figure functions take (the
figure functions never look at paths; which files: :mod:`grood.figures.catalog`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from grood.storage import load_npz


def histories_from(train_summaries: dict[int, str | Path]) -> tuple[dict[int, list[dict]], dict[int, float]]:
    """Per seed: the training history and the test accuracy, from the given ``train.json`` files."""
    hist, acc = {}, {}
    for seed, path in train_summaries.items():
        summary = json.loads(Path(path).read_text())
        hist[int(seed)], acc[int(seed)] = summary.get("history", []), summary["test_accuracy"]
    return hist, acc


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
        raise ValueError(f"{path} holds no prototypes P / p_ood: not a prototypes file")
    return protos["P"], protos["p_ood"]


def mixup_inputs_from(model_pt, mixup_npz, data_npz, early_zarr, n: int = 4, seed: int = 0) -> dict:
    """What :func:`grood.figures.mixup.mixup_figure` needs: ``n`` ID training images of distinct
    classes (fixed ``seed``), the network, its input spec and classes, λ and the layer of the mix-up
    prototype file, and its early prototypes ``Q`` from ``early_zarr`` — read row by row as drawn
    (:class:`grood.method.early_store.EarlyRows`), never whole (ImageNet's: 3.2 GB)."""
    from grood.method.early_store import EarlyRows
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint

    _, meta = load_npz(mixup_npz, [])
    if "layer" not in meta or "lam" not in meta:
        raise ValueError(f"{mixup_npz} records no mix-up layer and λ: not a mix-up prototype file")
    early = EarlyRows(early_zarr, meta["layer"])
    arrays, data_meta = load_npz(data_npz, ["x_train", "y_train", "files_train", "bytes_train"])
    if "x_train" not in arrays and "files_train" not in arrays:
        raise ValueError(f"{data_npz} has no training split: the mix-up figure shows ID training images")
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
            "spec": InputSpec.from_dict(ck["spec"]), "classes": ck["classes"], "Q": early,
            "layer": meta["layer"], "lam": float(meta["lam"])}
