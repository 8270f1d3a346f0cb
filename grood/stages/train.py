"""Stage `train`: train the backbone on the ID set -- or adopt a pretrained / user-supplied one
(``train.pretrained`` / ``train.checkpoint``, no training) -- and report its test accuracy."""

from __future__ import annotations

import logging
import time

from grood.net.source import model_source
from grood.stages.io import dataset_meta, load_split
from grood.storage import config_hash, provenance, save_json, sha256_file

log = logging.getLogger("grood")


def load_aux(aux_npzs: list) -> "tuple[np.ndarray | None, list[int]]":
    """GReg's auxiliary outliers: the test-split images of the prepared aux sets, concatenated
    (the aux sources build a test split only; None for none), and each set's size."""
    import numpy as np

    if not aux_npzs:
        return None, []
    parts = [(str(p), load_split(p, "test")[0]) for p in aux_npzs]
    first, x0 = parts[0]
    for path, x in parts[1:]:
        if x.shape[1:] != x0.shape[1:]:
            raise ValueError(f"auxiliary outlier sets {first} and {path} have images of shapes "
                             f"{x0.shape[1:]} and {x.shape[1:]}; give every aux set of a benchmark "
                             f"the ID set's image size and channels")
    return np.concatenate([x for _, x in parts]), [len(x) for _, x in parts]


def load_init(init_model: list, y_train, data_npz) -> "dict | None":
    """``train.init``'s checkpoint as a state dict; its classes must be the ID set's."""
    from grood.net.training import encode_labels, load_checkpoint

    if not init_model:
        return None
    model, meta = load_checkpoint(init_model[0])
    classes = [int(c) for c in encode_labels(y_train)[1]]
    if [int(c) for c in meta["classes"]] != classes:
        raise ValueError(f"train.init: checkpoint {init_model[0]} was trained on classes "
                         f"{meta['classes']}, the ID set {data_npz} has {classes}; fine-tune from "
                         f"a benchmark with the same ID set")
    return model.state_dict()


def train_stage(data_npz, model_out, summary_out, train_cfg: dict, seed: int, device: str = "auto",
                threads: int | None = None, workers: int = 0, aux_npzs: list = (),
                init_model: list = ()) -> dict:
    """Train on the ID set's train split (GReg / GReg+: with the ``aux_npzs`` outliers; from the
    ``init_model`` checkpoint when ``train.init`` is set), report test accuracy, save the checkpoint.
    A pretrained / checkpoint network (``train_cfg``) is adopted instead (:func:`adopt_stage`);
    ``workers`` decode a file-list dataset's images in parallel."""
    import torch

    from grood.net.device import select_device, set_threads
    from grood.net.forward import encode_known_labels, forward_batches
    from grood.net.training import TrainConfig, save_checkpoint, train

    source = model_source(train_cfg)
    if not source.trains:
        return adopt_stage(data_npz, model_out, summary_out, train_cfg, device, threads, workers)
    set_threads(threads)
    dev = select_device(device)
    if dataset_meta(data_npz).get("store") == "files":
        raise ValueError(f"{data_npz} is a file list (store: files): training from scratch holds the "
                         f"training images in memory. Fix: set store: npz for the ID dataset, or "
                         f"use train.pretrained / train.checkpoint")
    cfg = TrainConfig.from_dict({**train_cfg, "seed": seed})
    x_train, y_train = load_split(data_npz, "train")
    x_test, y_test = load_split(data_npz, "test")
    (aux, aux_sizes), init = load_aux(list(aux_npzs)), load_init(list(init_model), y_train, data_npz)
    t0 = time.perf_counter()
    result = train(x_train, y_train, cfg, dev, aux_images=aux, init=init)
    seconds = time.perf_counter() - t0
    out = forward_batches(result.model, x_test, result.spec, dev, name="test accuracy")
    y_enc = encode_known_labels(y_test, result.classes)
    known = y_enc >= 0
    acc = float((out["logits"].argmax(1)[known] == y_enc[known]).mean())
    summary = {
        "test_accuracy": acc,
        "n_train": int(len(x_train)),
        "n_test": int(known.sum()),
        "train_seconds": round(seconds, 2),
        "device": str(dev),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "history": result.history,
        **provenance(config_hash=config_hash(cfg.__dict__), data_sha256=sha256_file(data_npz)),
        **({"aux": {str(p): {"n": int(n), "sha256": sha256_file(p)} for p, n in
                    zip(aux_npzs, aux_sizes)}} if aux_npzs else {}),
        **({"init": {"checkpoint": str(init_model[0]), "sha256": sha256_file(init_model[0])}}
           if init_model else {}),
    }
    log.info("test accuracy %.4f after %.1f s of training", acc, seconds)
    save_checkpoint(model_out, result, cfg, {"provenance": summary})
    save_json(summary_out, summary)
    return summary


def adopt_stage(data_npz, model_out, summary_out, train_cfg: dict, device: str = "auto",
                threads: int | None = None, workers: int = 0) -> dict:
    """A pretrained / checkpoint network as the benchmark's model: checked against the ID set's
    classes, its test accuracy measured, saved as model.pt + train.json like a trained one."""
    import torch

    from grood.net.device import select_device, set_threads
    from grood.net.pretrained import adopt, save_adopted

    set_threads(threads)
    dev = select_device(device)
    source = model_source(train_cfg)
    t0 = time.perf_counter()
    model, spec, origin = adopt(source)
    num_classes = int(model.fc.out_features)
    check_classes(data_npz, num_classes, origin)
    x_test, y_test = load_split(data_npz, "test", workers)
    acc, n_known = test_accuracy(model.to(dev), x_test, y_test, list(range(num_classes)), spec, dev)
    summary = {
        "test_accuracy": acc,
        "n_train": int(dataset_meta(data_npz).get("n_train", 0)),
        "n_test": n_known,
        "train_seconds": 0.0,
        "adopt_seconds": round(time.perf_counter() - t0, 2),
        "model_source": origin,
        "input_spec": spec.to_dict(),
        "device": str(dev),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "history": [],
        **provenance(config_hash=config_hash(train_cfg), data_sha256=sha256_file(data_npz)),
    }
    log.info("%s (%s): test accuracy %.4f on %d images", source.stored_arch,
             origin.get("weights") or origin.get("path"), acc, n_known)
    save_adopted(model_out, model, spec, source, {"provenance": summary, "train_config": dict(train_cfg)})
    save_json(summary_out, summary)
    return summary


def check_classes(data_npz, num_classes: int, origin: dict) -> None:
    """The ID set's labels must be the head's outputs 0..C-1, each with training images (class
    prototypes need every class); else an error saying how to line them up."""
    meta = dataset_meta(data_npz)
    names = meta.get("class_names") or []
    train_counts = meta.get("label_counts", {}).get("train")
    what = origin.get("weights") or origin.get("path")
    if train_counts is None:
        raise ValueError(f"{data_npz} has no training split; the ID dataset of a pretrained network "
                         f"still needs one (class prototypes, detector fitting)")
    n_data = len(names) if names else max(int(k) for k in train_counts) + 1
    missing = sorted(set(range(num_classes)) - {int(k) for k in train_counts})
    if n_data != num_classes or missing:
        raise ValueError(
            f"the network ({what}) has {num_classes} outputs but the ID dataset {data_npz} has "
            f"{n_data} classes{f' and no training image of class(es) {missing[:10]}' if missing else ''}. "
            f"Fix: the ID set's class folders must be the network's classes in its order (ImageNet-1k: "
            f"the 1,000 wnid folders n01440764 ... sorted), each with training images")


def test_accuracy(model, images, labels, classes: list[int], spec, dev, batch_size: int = 256) -> tuple[float, int]:
    """(accuracy, rows counted) of ``model`` on labelled ``images``, batch by batch (never all
    logits at once); labels outside ``classes`` are not counted."""
    from grood.net.forward import encode_known_labels, forward_batches

    y = encode_known_labels(labels, classes)
    correct = counted = 0

    def count(start, out):
        nonlocal correct, counted
        yb = y[start : start + len(out["logits"])]
        known = yb >= 0
        correct += int((out["logits"].argmax(1)[known] == yb[known]).sum())
        counted += int(known.sum())

    forward_batches(model, images, spec, dev, batch_size, name="test accuracy", sink=count)
    if counted == 0:
        raise ValueError("no test image carries one of the network's class labels: test accuracy "
                         "is undefined; check the ID dataset's class folders")
    return correct / counted, counted
