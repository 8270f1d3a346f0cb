"""Stage `search_index_shard` (only with `shards.index` > 1): one row shard of a k-NN detector's
training index, built and searched by every query of one part, so no job holds the whole index."""

from __future__ import annotations

import logging

from grood.storage.chunks import open_arrays

log = logging.getLogger("grood")


def search_index_shard_stage(detector_npz, train_stores: list, query_stores: list, out_npz, shard: int,
                             shards: int, threads: int | None = None, search_gpu: bool | str = "auto") -> dict:
    """Index shard ``shard`` of ``shards`` of the rows the detector stored at ``detector_npz``
    indexes (GROOD: the correctly classified training gradients; kNN: every training feature), read
    lazily from ``train_stores``; search the part's queries (``query_stores``) and write each
    query's top-k distances and global row ids to ``out_npz`` (:func:`grood.search.sharded.search_shard`;
    exact for the ``flat`` index, so the merge in `score` is the unsharded exact search).
    Shards start on the training store's chunk rows, so each reads whole chunks.  faiss searches on
    ``threads`` threads, or proposes on a GPU (``search_gpu``: "auto", True, False); the exact
    result is the same either way.  Returns the meta."""
    from grood.detectors import IndexedDetector
    from grood.detectors.store import load_detector
    from grood.search import search_threads
    from grood.search.sharded import search_shard

    det = load_detector(detector_npz)
    if not isinstance(det, IndexedDetector):
        raise ValueError(f"{detector_npz}: {type(det).__name__} has no k-NN index to search in shards")
    if det.index_shards != int(shards):
        raise ValueError(f"{detector_npz} was fitted for shards.index: {det.index_shards}, this job is shard "
                         f"{shard} of {shards}; re-run fit_detector with the same shards.index")
    vectors, mask = det.indexed_rows(**open_arrays(train_stores, det.fit_requires))
    queries = open_arrays(query_stores, (det.query_array,))[det.query_array]
    align = int(getattr(vectors, "chunks", (1,))[0])
    with search_threads(threads or 1):
        _, _, meta = search_shard(vectors, queries, det.k, int(shard), int(shards), det.index_spec, mask, align,
                                  out_npz, source=str(query_stores[0]), use_gpu=search_gpu)
    log.info("index shard %d/%d of %s: rows %s, %d vectors → %s", shard, shards, detector_npz, meta["rows"],
             meta["n_indexed"], out_npz)
    return meta
