"""Stage `index_quality`: what a detector's approximate faiss index (IVF-Flat, IVF-PQ) costs —
recall@k against exact search and the AUROC change of its scores, on a seeded sample of ID test and
OOD queries, per OOD set (:func:`grood.search.quality.approximation_report`).  The exact side reads
the training store block by block, so the job's memory is one block plus the index."""

from __future__ import annotations

import logging

from grood.storage.chunks import open_arrays
from grood.detectors.store import load_detector
from grood.storage import provenance, save_json

log = logging.getLogger("grood")


def approximate(det) -> bool:
    """True for a detector whose nearest-neighbour index is approximate (has a report to make)."""
    spec = getattr(det, "index_spec", None)
    return spec is not None and not spec.exact


def index_quality_stage(detector_npz, train_stores: list, test_stores: list, ood_stores: dict[str, list],
                        out_json, sample: int = 1000, seed: int = 0, nprobes=(), threads: int | None = None) -> dict:
    """Recall@k and AUROC change of the fitted detector's index, per OOD set, to ``out_json``;
    ``nprobes``: an IVF index's report at each of these ``nprobe`` values too (config
    ``index_quality.nprobe``), to choose the detector's ``nprobe`` from."""
    from grood.search.quality import approximation_report

    det = load_detector(detector_npz)
    if not approximate(det):
        raise ValueError(f"{detector_npz}: {type(det).__name__} searches exactly (index 'flat'); "
                         f"index_quality is for ivf_flat / ivf_pq detectors only")
    if int(sample) < 1:
        raise ValueError(f"index_quality.sample must be ≥ 1 query per part, got {sample}")
    vectors, mask = det.indexed_rows(**open_arrays(train_stores, det.fit_requires))
    (name,) = det.requires  # the array the index holds: gradients (GROOD) or features (kNN)
    id_queries = open_arrays(test_stores, (name,))[name]
    spec = det.index_spec
    from grood.search import search_threads

    parts = {}
    for ood, stores in ood_stores.items():
        with search_threads(threads or 1):
            parts[ood] = approximation_report(det.index_, vectors, id_queries, open_arrays(stores, (name,))[name],
                                              k=det.k, metric=spec.metric, mask=mask, sample=int(sample),
                                              seed=int(seed), nprobes=list(nprobes or ()))
        log.info("%s vs %s: recall@%d %.4f, AUROC change %+.3f points", spec.kind, ood, det.k,
                 parts[ood]["recall_at_k"], parts[ood]["auroc_change_points"])
    report = {"index": spec.to_dict(), "k": det.k, "sample": int(sample), "seed": int(seed), "parts": parts,
              "nprobe_sweep": sorted({int(v) for v in nprobes or ()}),
              "provenance": provenance(detector=str(detector_npz))}
    save_json(out_json, report)
    return report
