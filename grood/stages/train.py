"""Stage `train`: train the backbone on the ID set, report its test accuracy."""

from __future__ import annotations

import logging
import time

from grood.stages.io import load_split
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
    from grood.training import encode_labels, load_checkpoint

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
                threads: int | None = None, aux_npzs: list = (), init_model: list = ()) -> dict:
    """Train on the ID set's train split (GReg / GReg+: with the ``aux_npzs`` outliers; from the
    ``init_model`` checkpoint when ``train.init`` is set), report test accuracy, save the checkpoint."""
    import torch

    from grood.device import select_device, set_threads
    from grood.forward import encode_known_labels, forward_batches
    from grood.training import TrainConfig, save_checkpoint, train

    set_threads(threads)
    dev = select_device(device)
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
