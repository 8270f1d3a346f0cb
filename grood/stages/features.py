"""Stage `features`: penultimate features and logits of one dataset split, to Zarr."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from grood.stages.io import load_split
from grood.storage import ZarrWriter, provenance, sha256_file

log = logging.getLogger("grood")


def features_stage(model_pt, data_npz, split: str, is_id: bool, out_zarr, batch_size: int = 1024,
                   device: str = "auto", threads: int | None = None,
                   rows: tuple[int, int] | None = None, shard: tuple[int, int] | None = None,
                   workers: int = 0, gaia: bool = False, early_layer: str | None = None,
                   early_out=None) -> None:
    """Penultimate features, logits and (for ID sets) class labels of one dataset split, to Zarr.

    ``gaia``: also GAIA's per-sample statistics ``gaia_a`` and ``gaia_z`` (:mod:`grood.net.gaia`), from
    the same forward pass plus three backward passes per batch; ``features`` and ``logits`` are the
    values the plain forward pass gives.  Without it the stage is the plain forward pass.

    ``rows=(start, stop)`` writes only those rows; ``shard=(i, N)`` writes shard ``i`` of ``N``
    (rows from the split's length, aligned to ``batch_size`` — :func:`grood.storage.shards.row_ranges` —
    so the shard runs exactly the unsharded run's batches and :func:`grood.storage.shards.merge_zarr` of
    all N shards is byte-identical to the unsharded store).  Either is recorded in the attrs.
    A file-list dataset is decoded batch by batch by ``workers`` processes, so no part is ever in
    memory whole: each batch goes to the Zarr store as it comes.

    ``early_out``: where the mix-up's early prototypes ``Q`` go (:mod:`grood.method.early_store`):
    with ``early_layer`` on an ID split, the class sums of the activation after that stage are
    accumulated in the same pass (one read of the images); otherwise a store without ``Q``.  A shard
    writes its float64 partial sums (``.npz``) for the gather instead of the store.
    """
    import torch

    from grood.net.device import select_device, set_threads
    from grood.net.forward import encode_known_labels, forward_batches
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint

    from grood.method import early_store

    set_threads(threads)
    dev = select_device(device)
    model, meta = load_checkpoint(model_pt, dev)
    early = None
    if early_out is not None and early_layer is not None and is_id:
        # before the model turns channels-last: Q comes from the contiguous activation, as it always has
        early = early_store.EarlyMeans(model, early_layer, meta["num_classes"], dev)
    model = model.to(memory_format=torch.channels_last)  # ≈ 20% faster fp32 convolutions on CPU
    spec = InputSpec.from_dict(meta["spec"])
    images, labels = load_split(data_npz, split, workers)
    if len(images) == 0:
        raise ValueError(f"{data_npz} [{split}] holds no images: an empty dataset cannot be scored; "
                         f"check its config (classes, max_test, path)")
    labels = encode_known_labels(labels, meta["classes"]) if is_id else np.full(len(images), -1, np.int64)
    attrs = provenance(model_sha256=sha256_file(model_pt), data=str(data_npz), split=split,
                       data_sha256=sha256_file(data_npz), precision="fp32")
    n_total = len(images)
    start, stop = _select_rows(n_total, rows, shard, batch_size, attrs)
    images, labels = images[start:stop], labels[start:stop]
    if gaia:
        from grood.net.gaia import gaia_layers

        attrs["gaia_layers"] = gaia_layers(model)  # the feature maps GAIA-Z and GAIA-A read
    with ZarrWriter(out_zarr, len(images), batch_size, attrs) as w:
        def sink(begin, out):
            w.write(begin, **out, labels=labels[begin : begin + len(out["logits"])])

        def tap(begin, x):
            early.add(x, labels[begin : begin + len(x)])

        name = f"{Path(str(data_npz)).name} [{split}]"
        if gaia:
            from grood.net.gaia import gaia_batches

            if early is not None:  # the rules never ask: GAIA's parts are scored, Q's is the training split
                raise ValueError(f"{data_npz} [{split}]: GAIA statistics and the early prototypes are computed "
                                 "in different parts' passes; ask for one of them per features job")
            gaia_batches(model, images, spec, dev, batch_size, name=name, sink=sink, with_outputs=True)
        else:
            forward_batches(model, images, spec, dev, batch_size, name=name, sink=sink,
                            tap=tap if early is not None else None)
    log.info("features%s of %d images (rows [%d, %d) of %d) → %s", " and GAIA statistics" if gaia else "",
             len(images), start, stop, n_total, out_zarr)
    if early_out is not None:
        _write_early(early, early_out, early_layer, is_id, shard is not None, attrs)


def _write_early(early, out, layer, is_id: bool, sharded: bool, attrs: dict) -> None:
    """The early prototypes of this pass (or a store without them): a store, or a shard's partial sums."""
    from grood.method import early_store

    keep = {k: v for k, v in attrs.items() if k not in ("precision",)}
    if early is None:
        reason = ("not an ID set: the early prototypes are class means of the ID training images" if not is_id
                  else "no detector or figure uses the mix-up at an early layer")
        if sharded:
            early_store.save_partial_sums(out, None, None, {**keep, "layer": None, "reason": reason})
        else:
            early_store.no_early_store(out, reason, keep)
        return
    info = {**keep, "layer": layer, "num_classes": early.num_classes, "sums": "float64, row order, contiguous "
            "(not channels-last) activation; Q = float32(sums / counts)"}
    if sharded:  # an empty shard (no batch) has no sums to add
        sums, counts = early.partial() if early.sums is not None else (None, None)
        early_store.save_partial_sums(out, sums, counts, info)
    else:
        early_store.write_early_store(out, early.means(), early.counts, info)
    log.info("early prototypes after %s of %d classes (%d rows) → %s", layer, early.num_classes,
             int(early.counts.sum()), out)


def _select_rows(n: int, rows, shard, align: int, attrs: dict) -> tuple[int, int]:
    """The row range a stage works on (all rows, ``rows`` or ``shard=(i, N)``); records it in ``attrs``."""
    from grood.storage.shards import shard_attrs, shard_rows

    if rows is not None and shard is not None:
        raise ValueError("pass rows=(start, stop) or shard=(i, N), not both")
    if shard is not None:
        i, count = shard
        rows = shard_rows(n, i, count, align)
        attrs.update(shard_attrs(i, count, rows, n))
    elif rows is not None:
        rows = (int(rows[0]), int(rows[1]))
        if not 0 <= rows[0] <= rows[1] <= n:
            raise ValueError(f"rows {rows} are outside [0, {n}]")
        attrs.update(rows=list(rows), n_rows_total=n)
    else:
        rows = (0, n)
    return rows
