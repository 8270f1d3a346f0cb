"""Stage `fit_detector`: fit one detector on the ID training arrays it needs (a faiss index for the
kNN-based ones) and store it for the `score` jobs — without pickle (:mod:`grood.detectors.store`),
so a run someone sends you is safe to open."""

from __future__ import annotations

import logging
import time

from grood.method.vocab import HEAD_ARRAYS
from grood.storage.chunks import open_arrays

log = logging.getLogger("grood")


def fit_detector_stage(method: str, params: dict, train_stores: list, out_npz, index_shards: int = 1,
                       model_pt=None, head_npz=None) -> None:
    """Detector ``method`` with ``params``, fitted on the arrays it names from ``train_stores``,
    stored at ``out_npz`` (arrays + JSON header; faiss indexes in faiss's own serialisation).

    The classifier head (``head_weight``, ``head_bias``: :data:`grood.method.vocab.HEAD_ARRAYS`) is in
    no store: a detector that fits on it (ReAct, ASH, SCALE, DICE, ViM) gets it from ``head_npz`` (the
    `head` stage's arrays: what the workflow passes, so these fits need no torch) or else from the
    checkpoint ``model_pt``, and keeps what it needs in its fitted state.

    ``index_shards`` > 1 (config ``shards.index``, detectors with a k-NN index only): fitted and
    stored without its index, which `search_index_shard` jobs build and search in row shards."""
    from grood.detectors import IndexedDetector, make_detector
    from grood.detectors.store import save_detector

    det = make_detector(method, params)
    sharded = int(index_shards) > 1
    if sharded and not isinstance(det, IndexedDetector):
        raise ValueError(f"{method} has no k-NN index to shard: fit it with index_shards=1")
    stored = tuple(n for n in det.fit_requires if n not in HEAD_ARRAYS)
    # lazy Zarr arrays: GROOD, kNN and Mahalanobis read them block by block, the others whole
    arrays = open_arrays(train_stores, stored) if stored else {}
    if set(det.fit_requires) & set(HEAD_ARRAYS):
        arrays.update(stored_head(head_npz, method) if head_npz else checkpoint_head(model_pt, method))
    started = time.perf_counter()
    det.fit(**arrays, **({"with_index": False} if sharded else {}))
    fitted = time.perf_counter() - started
    save_detector(det, out_npz, method=method, index_shards=int(index_shards),
                  stores=list(map(str, train_stores)), **({"model": str(model_pt)} if model_pt else {}),
                  **({"head": str(head_npz)} if head_npz else {}))
    log.info("%s fitted in %.3f s → %s", method, fitted, out_npz)


def stored_head(head_npz, method: str) -> dict:
    """``head_weight`` and ``head_bias`` as the `head` stage stored them."""
    from grood.storage.files import load_npz

    arrays, _ = load_npz(head_npz, list(HEAD_ARRAYS))
    missing = [n for n in HEAD_ARRAYS if n not in arrays]
    if missing:
        raise ValueError(f"{method}: {head_npz} lacks {', '.join(missing)}; it is not the head stage's output "
                         f"(rebuild it: delete it and run snakemake, or pass the checkpoint as model_pt)")
    return arrays


def checkpoint_head(model_pt, method: str) -> dict:
    """``head_weight`` and ``head_bias`` of the checkpoint ``model_pt`` (the head ``model.fc``)."""
    if model_pt is None:
        raise ValueError(f"{method} fits on the classifier head ({', '.join(HEAD_ARRAYS)}): pass head_npz "
                         f"(the head stage's arrays, which the workflow adds for such detectors) or model_pt, the "
                         f"run's checkpoint")
    from grood.detectors.head import head_arrays
    from grood.net.training import load_checkpoint

    model, _ = load_checkpoint(model_pt)
    return head_arrays(model)
