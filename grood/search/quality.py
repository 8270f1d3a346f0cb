"""What an approximate index costs: recall@k against exact search and the AUROC change it causes.

For a detector with an IVF index, a seeded sample of ID and OOD queries is searched twice — in the
approximate index and exactly (streamed over the indexed store, :func:`streamed_exact_search`) —
and the report gives recall@k and the AUROC of GROOD-style scores (``−`` k-th squared distance)
both ways, so a user sees what the speed costs.  The evaluate stage calls
:func:`approximation_report` per detector and writes the dict beside the metrics.

``nprobes``: an IVF index is searched again probing each of these numbers of cells (the exact side
once), with the search time per query, so the report shows where recall and AUROC stop changing —
the ``nprobe`` to put in the detector's ``index`` (faiss's guidance: tune it on the data).
"""

from __future__ import annotations

import numpy as np

import time

from grood.storage.chunks import block_rows, row_width, seeded_sample, take_rows
from grood.search.build import build_unique_index, selected_rows
from grood.search.duplicates import rows_of
from grood.search.exact import PAD_ID, exact_search, merge_topk
from grood.search.query import search
from grood.search.spec import IndexSpec


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of ``|approx top-k ∩ exact top-k| / k`` (ids; padding ids −1 never count).

    For k=1 this is the share of queries whose nearest neighbour the approximate search found.
    A different vector at exactly the same distance counts as a miss.
    """
    a, e = np.asarray(approx_ids), np.asarray(exact_ids)
    if a.ndim != 2 or e.ndim != 2 or len(a) != len(e):
        raise ValueError(f"approx and exact ids must be (queries, k) arrays of equal length, got {a.shape} "
                         f"and {e.shape}")
    k = int(k or min(a.shape[1], e.shape[1]))
    if not 1 <= k <= min(a.shape[1], e.shape[1]):
        raise ValueError(f"k={k} exceeds the neighbours given ({a.shape[1]} approximate, {e.shape[1]} exact)")
    if len(a) == 0:
        raise ValueError("recall@k of zero queries is undefined")
    a, e = a[:, :k], e[:, :k]
    hits = (a[:, :, None] == e[:, None, :]) & (a[:, :, None] != PAD_ID)
    return float(hits.any(2).sum(1).mean() / k)


def streamed_exact_search(vectors, queries: np.ndarray, k: int, metric: str = "l2",
                          mask: np.ndarray | None = None, block: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Exact canonical top-k (float64 distances, row ids) of ``queries`` over the rows of ``vectors``
    kept by ``mask``, reading ``vectors`` one block at a time: memory is one block, not the store."""
    n = int(vectors.shape[0])
    block = int(block or 4 * block_rows(row_width(vectors)))
    spec = IndexSpec(kind="flat", metric=metric)
    best = (np.full((len(queries), k), np.inf), np.full((len(queries), k), PAD_ID, dtype=np.int64))
    for a in range(0, n, block):
        index, duplicates = build_unique_index(vectors, spec, mask, (a, min(a + block, n)), row_ids=True)
        if index.ntotal:
            part = exact_search(index, queries, min(k, rows_of(index.ntotal, duplicates)), metric,
                                duplicates=duplicates)
            best = merge_topk([best, part], k, allow_padding=True)
    if (best[1] == PAD_ID).any():
        raise ValueError(f"fewer than k={k} vectors are indexed; lower k")
    return best


def auroc_change(exact_id: np.ndarray, exact_ood: np.ndarray, approx_id: np.ndarray,
                 approx_ood: np.ndarray) -> dict:
    """AUROC of exact and approximate ID scores (higher = ID) and the change, in AUROC points."""
    from grood.evaluation.metrics import auroc

    exact, approx = auroc(exact_id, exact_ood), auroc(approx_id, approx_ood)
    return {"auroc_exact": exact, "auroc_approx": approx, "auroc_change_points": 100.0 * (approx - exact)}


def approximation_report(index, vectors, id_queries, ood_queries, k: int = 1, metric: str = "l2",
                         mask: np.ndarray | None = None, sample: int = 1000, seed: int = 0,
                         use_gpu: bool | str = "auto", nprobes=()) -> dict:
    """Recall@k and AUROC change of approximate ``index`` (built over the ``mask`` rows of ``vectors``,
    ids = positions among them, as :func:`grood.search.build.build_index` makes) on a seeded sample of
    ``sample`` ID and ``sample`` OOD queries; scores are ``−`` the k-th squared distance.  ``nprobes``
    (an IVF index): the same at each of these ``nprobe`` values, under ``"nprobe_sweep"``."""
    rows = selected_rows(mask, int(vectors.shape[0]))
    picked = {}
    for name, queries, s in (("id", id_queries, seed), ("ood", ood_queries, seed + 1)):
        picked[name] = take_rows(queries, seeded_sample(int(queries.shape[0]), sample, s))
    q = np.concatenate([picked["id"], picked["ood"]])
    exact_d, exact_rows = streamed_exact_search(vectors, q, k, metric, mask)
    n_id = len(picked["id"])
    score_e = -exact_d[:, k - 1]

    def approximate() -> dict:
        t0 = time.perf_counter()
        approx_d, approx_pos = search(index, q, k, metric, use_gpu)
        seconds = time.perf_counter() - t0
        approx_rows = np.where(approx_pos < 0, PAD_ID, rows[np.clip(approx_pos, 0, None)])
        score_a = -approx_d[:, k - 1].astype(np.float64)
        return {"recall_at_k": recall_at_k(approx_rows, exact_rows, k), "ms_per_query": 1e3 * seconds / len(q),
                **auroc_change(score_e[:n_id], score_e[n_id:], score_a[:n_id], score_a[n_id:])}

    report = {"k": int(k), "metric": metric, "n_id_queries": n_id, "n_ood_queries": len(picked["ood"]),
              "seed": int(seed), **approximate()}
    if nprobes and hasattr(index, "nprobe"):
        configured, sweep = int(index.nprobe), []
        try:
            for nprobe in sorted({int(v) for v in nprobes}):
                index.nprobe = min(nprobe, int(index.nlist))
                sweep.append({"nprobe": int(index.nprobe), **approximate()})
        finally:
            index.nprobe = configured
        report["nprobe_sweep"] = sweep
    return report


__all__ = ["recall_at_k", "streamed_exact_search", "auroc_change", "approximation_report"]
