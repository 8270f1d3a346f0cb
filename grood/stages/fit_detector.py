"""Stage `fit_detector`: fit one detector on the ID training arrays it needs (a faiss index for the
kNN-based ones) and store it for the `score` jobs — without pickle (:mod:`grood.detectors.store`),
so a run someone sends you is safe to open."""

from __future__ import annotations

import logging

from grood.storage.chunks import open_arrays

log = logging.getLogger("grood")


def fit_detector_stage(method: str, params: dict, train_stores: list, out_npz, index_shards: int = 1) -> None:
    """Detector ``method`` with ``params``, fitted on the arrays it names from ``train_stores``,
    stored at ``out_npz`` (arrays + JSON header; faiss indexes in faiss's own serialisation).

    ``index_shards`` > 1 (config ``shards.index``, detectors with a k-NN index only): fitted and
    stored without its index, which `search_index_shard` jobs build and search in row shards."""
    from grood.detectors import IndexedDetector, make_detector
    from grood.detectors.store import save_detector

    det = make_detector(method, params)
    sharded = int(index_shards) > 1
    if sharded and not isinstance(det, IndexedDetector):
        raise ValueError(f"{method} has no k-NN index to shard: fit it with index_shards=1")
    # lazy Zarr arrays: GROOD, kNN and Mahalanobis read them block by block, the others whole
    arrays = open_arrays(train_stores, det.fit_requires) if det.fit_requires else {}
    det.fit(**arrays, **({"with_index": False} if sharded else {}))
    save_detector(det, out_npz, method=method, index_shards=int(index_shards),
                  stores=list(map(str, train_stores)))
    log.info("%s fitted → %s", method, out_npz)
