"""Stage `prototypes`: class, early-layer and OOD prototypes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from grood.stages.io import load_split
from grood.storage import provenance, save_npz, sha256_file
from grood.data.subset import training_share_mask
from grood.method.vocab import OOD_DATA_SOURCES, PROTOTYPE_SOURCES

log = logging.getLogger("grood")


def prototypes_stage(model_pt, data_npz, train_features_zarr, source: str, params: dict, out_npz,
                     seed: int = 0, ood_val_npz=None, device: str = "auto", threads: int | None = None,
                     workers: int = 0, early_zarr=None) -> dict:
    """Class prototypes ``P`` and the OOD prototype ``p_ood`` from ``source`` (``workers`` decode a
    file-list dataset's images in parallel).

    The mix-up reads the early prototypes ``Q`` from ``early_zarr``, which the features pass over
    the ID training part accumulated (:mod:`grood.method.early_store`), and decodes only its
    ``n_mix`` training images; ``Q`` is not copied into ``out_npz``."""
    import zarr

    from grood.method import prototypes as pr
    from grood.net.device import select_device, set_threads
    from grood.net.forward import forward_batches
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint

    if source not in PROTOTYPE_SOURCES:
        raise ValueError(f"unknown OOD-prototype source {source!r}; choose one of {list(PROTOTYPE_SOURCES)}")
    set_threads(threads)
    dev = select_device(device)
    model, meta = load_checkpoint(model_pt, dev)
    spec = InputSpec.from_dict(meta["spec"])
    num_classes = meta["num_classes"]
    if not Path(train_features_zarr).exists():
        raise FileNotFoundError(f"Zarr store {train_features_zarr} does not exist; re-run the rule that makes it")
    train = zarr.open_group(str(train_features_zarr), mode="r")
    labels = train["labels"][:]
    share = float(params.get("train_share", 1.0))
    # a share of the training rows (a tuning grid's point): the same rows GROOD then indexes
    rows = np.flatnonzero(training_share_mask(labels, share)) if share < 1.0 else None
    # streamed: ImageNet's training features (1.28M × 2048 float32, 10 GB) are never in memory at once
    P = pr.class_means_streamed(train["features"], labels, num_classes, rows=rows)
    arrays = {"P": P.astype(np.float32)}
    info: dict = {"source": source, "uses_ood_data": source in OOD_DATA_SOURCES,
                  **({"train_share": share, "n_train_rows": int(len(rows))} if rows is not None else {})}
    if source == "mixup":
        from grood.method.early_store import open_early

        layer = params["layer"]
        if early_zarr is None:
            raise ValueError("the mix-up needs the early prototypes of the features pass (early_zarr)")
        x_train, _ = load_split(data_npz, "train", workers)
        if len(x_train) != len(labels):
            raise ValueError(f"{data_npz} holds {len(x_train)} training images, its features {len(labels)} rows; "
                             f"re-run the features job of the ID training part")
        stored, attrs = open_early(early_zarr)
        if rows is None and attrs.get("layer") == layer:
            Q = np.asarray(stored[...])  # summed in the features pass over the training part
            if Q.shape[0] != num_classes:
                raise ValueError(f"{early_zarr} holds early prototypes of {Q.shape[0]} classes, the network has "
                                 f"{num_classes}; re-run the features job of the ID training part")
            info["early_prototypes"] = str(early_zarr)
        else:  # a tuning point (a share of the training rows, another layer): Q of its own, one pass
            if rows is not None:
                x_train, labels = x_train[rows], labels[rows]
            Q = pr.early_prototypes(model, x_train, labels, num_classes, layer, spec, dev)
            info.update(early_prototypes=None, early_prototypes_pass=f"this job's, over {len(x_train)} training images")
        rng = np.random.default_rng(seed)
        n_mix = min(int(params["n_mix"]), len(x_train))
        pick = np.sort(rng.choice(len(x_train), n_mix, replace=False))
        h_mix = pr.mixup_features(model, x_train[pick], Q, layer, float(params["lam"]), spec, dev)
        p_ood = h_mix.mean(0)
        info.update(layer=layer, lam=float(params["lam"]), n_mix=n_mix)
    elif source == "noise":
        noise = pr.noise_candidates(int(params["noise_n"]), spec, seed)
        out = forward_batches(model, noise, spec, dev, name="noise prototype")
        p_ood = pr.most_ood_like_mean(out["features"], out["logits"], float(params["noise_keep"]))
        info.update(noise_n=int(params["noise_n"]), noise_keep=float(params["noise_keep"]))
    elif source == "proto_mean":
        p_ood = P.mean(0)
    else:  # ood_val: real OOD validation images — uses OOD data, flagged in every result
        if ood_val_npz is None:
            raise ValueError("OOD-prototype source 'ood_val' needs prototypes.ood_val_dataset in the config")
        x_val, _ = load_split(ood_val_npz, "test", workers)
        n = min(int(params["n_mix"]), len(x_val))
        out = forward_batches(model, x_val[:n], spec, dev, name="ood_val prototype")
        p_ood = out["features"].mean(0)
        info.update(ood_val_dataset=str(ood_val_npz), n=n)
    arrays["p_ood"] = np.asarray(p_ood, dtype=np.float32)
    if not np.isfinite(arrays["p_ood"]).all():
        raise FloatingPointError(f"the {source} OOD prototype is not finite")
    info.update(provenance(model_sha256=sha256_file(model_pt)))
    save_npz(out_npz, arrays, info)
    log.info("prototypes (%s): P %s, ‖p_ood − mean P‖ = %.3f", source, P.shape,
             float(np.linalg.norm(arrays["p_ood"] - P.mean(0))))
    return info
