"""Stage `train`: train the backbone on the ID set, report its test accuracy."""

from __future__ import annotations

import logging
import time

from grood.stages.io import load_split
from grood.storage import config_hash, provenance, save_json, sha256_file

log = logging.getLogger("grood")


def train_stage(data_npz, model_out, summary_out, train_cfg: dict, seed: int, device: str = "auto",
                threads: int | None = None) -> dict:
    """Train on the ID set's train split, report test accuracy, save the checkpoint."""
    import torch

    from grood.device import select_device, set_threads
    from grood.forward import encode_known_labels, forward_batches
    from grood.training import TrainConfig, save_checkpoint, train

    set_threads(threads)
    dev = select_device(device)
    cfg = TrainConfig.from_dict({**train_cfg, "seed": seed})
    x_train, y_train = load_split(data_npz, "train")
    x_test, y_test = load_split(data_npz, "test")
    t0 = time.perf_counter()
    result = train(x_train, y_train, cfg, dev)
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
    }
    log.info("test accuracy %.4f after %.1f s of training", acc, seconds)
    save_checkpoint(model_out, result, cfg, {"provenance": summary})
    save_json(summary_out, summary)
    return summary
