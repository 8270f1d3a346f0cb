"""Stage `score`: per-sample scores of one part (ID test or an OOD set) with a fitted detector —
all rows, or one row shard of them when `shards.score` > 1 (merged by `score_gather`).  With
`shards.index` > 1 a k-NN detector holds no index: its scores come from the merged results of the
part's `search_index_shard` jobs."""

from __future__ import annotations

import logging
import time

import numpy as np

from grood.storage.chunks import open_arrays
from grood.stages.io import load_split, stored_rows
from grood.storage import atomic_path, provenance, save_npz

log = logging.getLogger("grood")


def score_stage(detector_npz, stores: list, out, model_pt=None, data_npz=None, split: str = "test",
                device: str = "auto", threads: int | None = None, rows: tuple[int, int] | None = None,
                shard: tuple[int, int] | None = None, align: int = 1, workers: int = 0,
                index_shards: list | None = None, search_gpu: bool | str = "auto") -> tuple[int, int]:
    """Score one part with the fitted detector stored at ``detector_npz`` (pickle-free:
    :mod:`grood.detectors.store`), to ``out``; returns the row range scored.

    A detector that ``needs_network`` (ODIN) also gets the model (``model_pt``) and the part's
    images (``split`` of ``data_npz``; a file list is decoded by ``workers`` processes).
    ``rows=(start, stop)`` scores only those rows, to ``.npy``.
    ``shard=(i, N)`` scores shard ``i`` of ``N`` to ``.npz`` (``scores`` + shard meta) for
    :func:`grood.storage.shards.merge_npz_rows`: rows aligned to ``align`` (the feature batch size, so
    shards read whole chunks) or, for a detector that runs the network, to its own batch size, so
    the shard runs the very batches of the unsharded run.
    ``index_shards``: the part's `search_index_shard` results (in shard order) for a detector fitted
    with ``shards.index`` > 1 — merged exactly (:func:`grood.search.sharded.merge_shard_files`), the
    k-th distances become scores by the detector's own ``score_from_kth_distance``.
    A k-NN detector (GROOD, kNN) searches with faiss on ``threads`` threads, or proposes its
    candidates on a GPU (``search_gpu``: "auto", True — a GPU or an error —, False); with an exact
    index the scores are the same bits either way (:mod:`grood.search.exact`).
    """
    from grood.storage.shards import shard_attrs, shard_rows

    if rows is not None and shard is not None:
        raise ValueError("pass rows=(start, stop) or shard=(i, N), not both")
    if index_shards and (rows is not None or shard is not None):
        raise ValueError("index shard results cover every row of the part: pass no rows or shard with them "
                         "(shards.score > 1 together with shards.index > 1 is not supported)")

    def pick(n, det):
        if shard is None:
            return rows if rows is not None else (0, n)
        block = int(getattr(det, "batch_size", align)) if det.needs_network else int(align)
        return shard_rows(n, int(shard[0]), int(shard[1]), block)

    if search_gpu is True and not index_shards:
        _gpu_search_or_fail(detector_npz)
    if index_shards:
        scores, (start, stop, n) = _score_from_index_shards(detector_npz, stores, list(index_shards))
    else:
        scores, (start, stop, n) = _score(detector_npz, stores, model_pt, data_npz, split, device, threads, pick,
                                          workers, search_gpu)
    if shard is None:
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, scores)
    else:
        meta = provenance(detector=str(detector_npz), stores=list(map(str, stores)),
                          **shard_attrs(int(shard[0]), int(shard[1]), (start, stop), n))
        save_npz(out, {"scores": scores}, meta)
    return start, stop


def _gpu_search_or_fail(detector_npz) -> None:
    """With ``search.gpu``, a k-NN detector's job fails before it reads its index (10 GB at ImageNet
    size) when faiss has no GPU build or sees no GPU, saying so."""
    from grood.detectors import METHODS, IndexedDetector
    from grood.detectors.store import read_header
    from grood.search.query import wants_gpu

    method = METHODS.get(read_header(detector_npz).get("method"))
    if method is not None and issubclass(method, IndexedDetector):
        wants_gpu(True)


def _score(detector_npz, stores, model_pt, data_npz, split, device, threads, pick_rows, workers=0,
           search_gpu: bool | str = "auto"):
    """Scores (float64) of the rows ``pick_rows(n, detector)`` of a part, and ``(start, stop, n)``."""
    from grood.detectors.base import check_finite
    from grood.detectors.store import load_detector

    det = load_detector(detector_npz)  # refuses anything but a pickle-free grood detector file
    if det.state_indexes:
        det.use_gpu = search_gpu
    source = str(stores[0]) if stores else f"{data_npz} ({split})"
    images = None
    if det.needs_network:
        if model_pt is None or data_npz is None:
            raise ValueError(f"{type(det).__name__} needs the network: pass model_pt and data_npz "
                             f"(the score rule adds them for detectors with needs_network)")
        images, _ = load_split(data_npz, split, workers)
        n = len(images)
    else:
        n = stored_rows(stores, det.requires)
    start, stop = (int(r) for r in pick_rows(n, det))
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows [{start}, {stop}) are outside the {n} rows of {source}")
    if stop == start:  # an empty shard (more shards than row blocks)
        return np.empty(0, dtype=np.float64), (start, stop, n)
    # lazy (a window of rows of each Zarr array): streaming detectors read it block by block
    arrays = open_arrays(stores, det.requires, (start, stop)) if det.requires else {}
    if det.needs_network:
        from grood.net.device import select_device, set_threads
        from grood.net.preprocess import InputSpec
        from grood.net.training import load_checkpoint

        set_threads(threads)
        dev = select_device(device)
        model, meta = load_checkpoint(model_pt, dev)
        arrays.update(model=model, images=images[start:stop], spec=InputSpec.from_dict(meta["spec"]),
                      device=dev)
    started = time.perf_counter()
    with _faiss_threads(det, threads):
        scores = check_finite(f"{type(det).__name__} scores for {source}", det.score(**arrays))
    log.info("%s: %d rows scored in %.3f s", type(det).__name__, stop - start, time.perf_counter() - started)
    return np.asarray(scores, dtype=np.float64), (start, stop, n)


def _score_from_index_shards(detector_npz, stores, shard_npzs):
    """Scores (float64) of every row of a part from its index shard results, and ``(0, n, n)``."""
    from grood.detectors import IndexedDetector
    from grood.detectors.base import check_finite
    from grood.detectors.store import load_detector
    from grood.search.sharded import merge_shard_files

    det = load_detector(detector_npz)
    if not isinstance(det, IndexedDetector) or det.index_shards != len(shard_npzs):
        held = det.index_shards if isinstance(det, IndexedDetector) else "no index"
        raise ValueError(f"{detector_npz} ({type(det).__name__}, index shards: {held}) does not match the "
                         f"{len(shard_npzs)} index shard results given; fit and search with the same shards.index")
    n = stored_rows(stores, (det.query_array,))
    dist, _, meta = merge_shard_files(shard_npzs)
    if meta["n_queries"] != n or meta["k"] != det.k or meta["index"] != det.index_spec.to_dict():
        raise ValueError(f"index shard results {shard_npzs[0]}…: {meta['n_queries']} queries, k={meta['k']}, "
                         f"index {meta['index']}; the part has {n} rows and the detector k={det.k}, index "
                         f"{det.index_spec.to_dict()}: delete the shard results and re-run them")
    kth = dist[:, det.k - 1] if n else np.empty(0)
    scores = check_finite(f"{type(det).__name__} scores for {stores[0]}", det.score_from_kth_distance(kth))
    log.info("%s: scores of %d rows from %d index shards (rows %s)", type(det).__name__, n, len(shard_npzs),
             meta["sharded_from"]["rows"])
    return np.asarray(scores, dtype=np.float64), (0, n, n)


def _faiss_threads(det, threads):
    """Run faiss on the job's threads (1 when not given): an exact index's scores are re-ranked in
    float64 and do not depend on the count (:mod:`grood.search.exact`)."""
    import contextlib

    if not det.state_indexes:
        return contextlib.nullcontext()
    from grood.search import search_threads

    return search_threads(threads or 1)
