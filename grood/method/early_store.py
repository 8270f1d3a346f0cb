"""GROOD's early-layer class means ``Q`` (docs/methods.md §1.1), accumulated during the features pass.

The mix-up (:func:`grood.method.prototypes.mixup_features`) needs ``Q_c``, the mean activation after
an early stage ``l`` of the ID training images of class ``c``.  Reading every training image again
for it would double the most expensive step at ImageNet size (decoding 1.28M JPEGs), so the
`features` job over the ID training part sums the early activations of each batch by class while it
computes the features (:class:`EarlyMeans`), and writes ``Q`` to its own store
(``prototypes/early/train.zarr``, :data:`grood.layout.OUTPUTS`): the `prototypes` job reads ``Q``
from there, the `gradients` jobs never see it, and the mix-up figure reads only the rows it draws.

The sums are those of the former second pass, bit for bit: float64, added row by row in the row
order of the split (``index_add_``), from the activation of the network in its stored (contiguous)
memory format — the features pass runs a channels-last copy, whose convolutions round differently
(by up to 5e-7 on the default benchmark's LeNet), so the early stages are run once more on a
contiguous copy of them.  That costs the early stages' FLOPs again on the training part (ResNet-50:
stem + layer1, ≈ 20% of a forward pass; the images are decoded once).

Row shards (``shards.features`` > 1) each write their float64 partial sums and counts
(:func:`save_partial_sums`); the gather adds them in shard order (:func:`merge_partial_sums`), which
equals the unsharded sums up to float64 rounding (not bit for bit: the order of the additions
differs), far below the float32 of ``Q``.

A store for a part that is not the ID training part, or when no mix-up needs ``Q``, holds no arrays,
only its attrs (``layer``: null, ``reason``): the `features` rule writes one store per part.
"""

from __future__ import annotations

import copy
import logging
import os

import numpy as np

log = logging.getLogger(__name__)

#: the arrays of an early store: Q (C, *activation) float32 and the rows per class
Q, COUNTS = "Q", "counts"


def early_stages(model, layer: str):
    """A contiguous-format copy of ``model``'s stages up to ``layer`` (inclusive), in eval mode,
    made before the features pass converts the model to channels-last."""
    import torch

    names = model.stage_names
    if layer not in names:
        raise ValueError(f"unknown stage {layer!r} for the mix-up's early prototypes; this network has "
                         f"stages {names}")
    stages = list(model.stages)[: names.index(layer) + 1]
    return copy.deepcopy(torch.nn.Sequential(*stages)).eval()


class EarlyMeans:
    """Per-class float64 sums and counts of the activation after ``layer``, batch by batch.

    ``add(x, labels)`` takes one input batch (already on the device, normalised) and the class
    labels of its rows (0..C-1); the sums are accumulated on the device, in row order.
    """

    def __init__(self, model, layer: str, num_classes: int, device):
        self.layer, self.num_classes, self.device = layer, int(num_classes), device
        self.stages = early_stages(model, layer).to(device)
        self.sums = None
        self.counts = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, x, labels: np.ndarray) -> None:
        import torch

        from grood.net.device import fp32_forward

        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(x):
            raise ValueError(f"{len(labels)} labels for a batch of {len(x)} images")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = labels[(labels < 0) | (labels >= self.num_classes)]
            raise ValueError(f"early prototypes: training label(s) {sorted(set(bad.tolist()))[:5]} outside the "
                             f"network's {self.num_classes} classes (-1: a class the network does not have)")
        with torch.no_grad(), fp32_forward():
            e = self.stages(x).double()
        if self.sums is None:
            self.sums = torch.zeros((self.num_classes, *e.shape[1:]), dtype=torch.float64, device=self.device)
        self.sums.index_add_(0, torch.as_tensor(labels, device=self.device), e)
        self.counts += np.bincount(labels, minlength=self.num_classes)

    def partial(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64 sums (C, *activation), int64 counts (C,)) of the batches added so far."""
        if self.sums is None:
            raise ValueError("early prototypes: no image was seen (an empty part)")
        return self.sums.cpu().numpy(), self.counts.copy()

    def means(self) -> np.ndarray:
        """``Q`` (float32): the class sums divided by the class counts, class by class on the device
        (the float64 sums never come to the host whole: 6.4 GB for ImageNet's layer1), the same
        IEEE division and rounding as :func:`means_from_sums`."""
        if self.sums is None:
            raise ValueError("early prototypes: no image was seen (an empty part)")
        if (self.counts == 0).any():
            raise ValueError(f"no training sample for class(es) {np.flatnonzero(self.counts == 0).tolist()}")
        q = np.empty(tuple(self.sums.shape), dtype=np.float32)
        for c in range(self.num_classes):
            q[c] = (self.sums[c] / float(self.counts[c])).float().cpu().numpy()
        return q


def means_from_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``Q = sums / counts`` per class, in float64, then rounded to float32; a class without a
    training image is an error, not a zero prototype."""
    counts = np.asarray(counts)
    if (counts == 0).any():
        raise ValueError(f"no training sample for class(es) {np.flatnonzero(counts == 0).tolist()}")
    sums = np.asarray(sums, dtype=np.float64)
    return (sums / counts.astype(np.float64).reshape(-1, *([1] * (sums.ndim - 1)))).astype(np.float32)


# ---------------------------------------------------------------------------------------- files


def write_early_store(path: str | os.PathLike, q: np.ndarray | None, counts: np.ndarray | None,
                      attrs: dict) -> None:
    """``Q`` (one class per chunk, so a reader of a few classes reads a few chunks) and ``counts``
    as a Zarr store, atomically; ``q`` None: a store with attrs only (no early prototypes here)."""
    import zarr

    from grood.storage import atomic_path

    with atomic_path(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        group.attrs.update(attrs)
        if q is not None:
            arr = group.create_array(Q, shape=q.shape, chunks=(1, *q.shape[1:]), dtype=q.dtype)
            arr[...] = q
            group.create_array(COUNTS, shape=counts.shape, chunks=counts.shape, dtype=np.int64)[...] = counts


def no_early_store(path: str | os.PathLike, reason: str, attrs: dict | None = None) -> None:
    """An early store without ``Q`` (the part is not the ID training part, or no mix-up needs it)."""
    write_early_store(path, None, None, {**(attrs or {}), "layer": None, "reason": reason})


def open_early(path: str | os.PathLike, layer: str | None = None):
    """``(Q as a lazy Zarr array (C, *activation), attrs)`` of an early store; ``layer``: the stage
    the caller mixes at, checked against the store's."""
    from pathlib import Path

    import zarr

    if not Path(path).exists():
        raise FileNotFoundError(f"early prototypes {path} do not exist; re-run the features job of the ID "
                                f"training part (snakemake makes them with its features)")
    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    if Q not in dict(group.arrays()):
        raise ValueError(f"{path} holds no early prototypes Q ({attrs.get('reason', 'no reason recorded')}); "
                         f"they are made by the features job of the ID training part when a detector or "
                         f"figure uses the mix-up")
    if layer is not None and attrs.get("layer") != layer:
        raise ValueError(f"{path} holds the early prototypes of stage {attrs.get('layer')!r}, the mix-up asks "
                         f"for {layer!r}; re-run the features job of the ID training part")
    return group[Q], attrs


def read_early(path: str | os.PathLike, layer: str | None = None) -> tuple[np.ndarray, dict]:
    """``(Q (C, *activation) float32, attrs)`` read whole."""
    q, attrs = open_early(path, layer)
    return np.asarray(q[...]), attrs


class EarlyRows:
    """Rows of a stored ``Q`` read on demand: ``rows[idx]`` for an index array reads just those
    classes (the mix-up figure draws four), ``len`` is the class count."""

    def __init__(self, path: str | os.PathLike, layer: str | None = None):
        self.array, self.attrs = open_early(path, layer)

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, index) -> np.ndarray:
        idx = np.asarray(index)
        if idx.ndim == 0:
            return np.asarray(self.array[int(idx)])
        unique, inverse = np.unique(idx, return_inverse=True)
        rows = np.stack([np.asarray(self.array[int(c)]) for c in unique]) if len(unique) else \
            np.empty((0, *self.array.shape[1:]), self.array.dtype)
        return rows[inverse.reshape(idx.shape)]


def save_partial_sums(path: str | os.PathLike, sums: np.ndarray | None, counts: np.ndarray | None,
                      attrs: dict) -> None:
    """One feature shard's float64 class sums and counts (``sums`` None: no early prototypes)."""
    from grood.storage import save_npz

    arrays = {} if sums is None else {"sums": np.asarray(sums, dtype=np.float64),
                                      "counts": np.asarray(counts, dtype=np.int64)}
    save_npz(path, arrays, attrs)


def merge_partial_sums(paths: list, out_zarr: str | os.PathLike) -> None:
    """The early store of a sharded features pass: the shards' sums and counts added in shard
    order, divided (:func:`means_from_sums`) and written by :func:`write_early_store`."""
    from grood.storage import load_npz, provenance
    from grood.storage.shards import SHARD_ATTRS, check_cover

    metas, total_sums, total_counts = [], None, None
    for p in paths:
        arrays, meta = load_npz(p)
        metas.append((str(p), meta))
        if not arrays:
            continue
        if total_sums is None:
            total_sums, total_counts = arrays["sums"].copy(), arrays["counts"].copy()
        elif arrays["sums"].shape != total_sums.shape:
            raise ValueError(f"{p}: class sums of shape {arrays['sums'].shape}, the other shards' "
                             f"{total_sums.shape}; re-run the features shards")
        else:
            total_sums += arrays["sums"]
            total_counts += arrays["counts"]
    check_cover(metas, str(out_zarr))
    layers = {m.get("layer") for _, m in metas}
    if len(layers) != 1:
        raise ValueError(f"the feature shards of {out_zarr} disagree on the early layer ({sorted(map(str, layers))}); "
                         f"re-run them")
    attrs = {k: v for k, v in metas[0][1].items() if k not in SHARD_ATTRS}
    attrs.update(provenance(sharded_from={"count": len(metas), "files": [p for p, _ in metas],
                                          "rows": [m["rows"] for _, m in metas]}))
    if total_sums is None:
        if attrs.get("layer") is not None:
            raise ValueError(f"the feature shards of {out_zarr} hold no rows to form early prototypes from")
        write_early_store(out_zarr, None, None, attrs)
        return
    write_early_store(out_zarr, means_from_sums(total_sums, total_counts), total_counts, attrs)
    log.info("early prototypes from %d shards → %s", len(metas), out_zarr)


__all__ = ["COUNTS", "Q", "EarlyMeans", "EarlyRows", "early_stages", "means_from_sums", "merge_partial_sums",
           "no_early_store", "open_early", "read_early", "save_partial_sums", "write_early_store"]
