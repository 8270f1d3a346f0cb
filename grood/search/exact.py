"""Exact k-NN whose result does not depend on how the indexed rows are split: the basis of sharding.

faiss's flat search computes ``‖q‖² + ‖x‖² − 2 q·x`` with a BLAS GEMM in float32, and the GEMM's
rounding depends on the shapes it is called with: the same (query, vector) pair gets distances that
differ in the last bits when the vectors sit in another shard or the query in another batch
(measured: up to 2e-4 on distances near 1000, d=512).  So the top-k of a shard cannot be merged
into *the* top-k by faiss's distances.  Here faiss only proposes candidates, and the result is
canonical:

1. faiss returns the ``k + margin`` nearest by its float32 distance ``d̃``;
2. each candidate's distance is recomputed in float64 from the stored float32 vectors,
   ``d = Σ (q_i − x_i)²`` — one value per pair, whatever the batch or shard;
3. candidates are ranked by ``(d, row id)``: ties go to the smaller row, deterministically;
4. the top-k is *certain* when the k-th canonical distance ``d_k`` is below ``d̃_last − ε``, where
   ``d̃_last`` is the largest candidate distance and ``ε`` bounds faiss's float32 error on any vector
   that could still belong in the top-k: ``γ_{D+2} (‖q‖ + r)²``, the standard dot-product rounding
   bound, doubled, where ``r`` bounds such a vector's norm — the largest stored norm, or
   ``‖q‖ + √d_k`` when smaller (a vector within ``d_k`` of ``q`` is no longer).  Every vector faiss
   did not return is then strictly farther.  Queries where it is not certain are searched again
   with twice the margin, until it is or every vector is a candidate.

The local norm bound matters where many vectors are tiny: on the default benchmark 86% of GROOD's
training gradients (confident images) have norms below 3·10⁻³, down to 4·10⁻⁹, so their distances
to a query near them differ by less than the *global* bound (≈ 10⁻⁵, set by the largest norm, ≈ 1):
the search resolved them only by making every vector a candidate, in the twelfth round.  Near such a
query ``ε`` shrinks with ``(‖q‖ + √d_k)²`` and one round does.  Vectors that are exactly identical
tie whatever the bound: the index stores each group of them once and the search counts it once per
row (``duplicates``, :mod:`grood.search.duplicates`).

The top-k of a set of rows is then a pure function of the rows, so the merge of the shards' top-k
(:func:`merge_topk`) equals the top-k of their union exactly, ties included.  For the same reason
it does not depend on what proposed the candidates: faiss on 1 or N threads, or faiss's GPU copy of
the index (``propose``; its float32 GEMM has the same error bound), give the same distances and ids,
bit for bit.  The float64 re-ranking runs in the job's threads (:data:`RERANK_THREADS`: faiss's
thread count), each query on its own, so it does not change the result either.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from grood.storage.chunks import iter_blocks, row_width
from grood.search.duplicates import check_duplicates, no_duplicates, with_duplicates
from grood.search.vectors import blas_blocks, faiss, prepare

log = logging.getLogger(__name__)

_U = 2.0**-24  # float32 unit roundoff
#: query rows whose candidates are re-ranked together (bounds the (rows, k', D) float64 gather)
RERANK_BYTES = 64 << 20
#: pads a shard with fewer than k vectors: sorts after every real neighbour
PAD_ID = -1


def error_bound(query_norms: np.ndarray, max_norm, d: int) -> np.ndarray:
    """Twice the worst-case error of faiss's float32 squared distance for each query, against any
    vector of norm at most ``max_norm`` (a number or one per query); the last term covers underflow
    (a GPU may flush subnormal products to zero)."""
    gamma = (d + 2) * _U / (1.0 - (d + 2) * _U)
    q = np.asarray(query_norms, dtype=np.float64)
    return 2.0 * gamma * (q + np.asarray(max_norm, dtype=np.float64)) ** 2 + (d + 2) * 2.0**-125


def certainty_bound(query_norms: np.ndarray, max_norm: float, kth: np.ndarray, d: int) -> np.ndarray:
    """:func:`error_bound` for the vectors that could still be among a query's top-k: none is farther
    than the k-th distance ``kth``, so its norm is at most ``‖q‖ + √kth`` (when below ``max_norm``)."""
    q = np.asarray(query_norms, dtype=np.float64)
    return error_bound(q, np.minimum(max_norm, q + np.sqrt(np.asarray(kth, dtype=np.float64))), d)


def flat_storage(index):
    """(vectors view (ntotal, D) float32, row ids (ntotal,) int64) of a flat index, without copies;
    an ``IndexIDMap2`` gives its stored ids, a bare flat index its positions."""
    fs = faiss()
    inner, ids = index, None
    if isinstance(index, (fs.IndexIDMap, fs.IndexIDMap2)):
        inner = fs.downcast_index(index.index)
        ids = fs.vector_to_array(index.id_map).astype(np.int64)
    if not isinstance(inner, fs.IndexFlat):
        raise TypeError(f"canonical exact search needs a flat index, got {type(inner).__name__}")
    n, d = inner.ntotal, inner.d
    x = fs.rev_swig_ptr(inner.get_xb(), n * d).reshape(n, d) if n else np.empty((0, d), np.float32)
    return x, (np.arange(n, dtype=np.int64) if ids is None else ids)


def canonical_distances(q: np.ndarray, x: np.ndarray, cand: np.ndarray, threads: int | None = None) -> np.ndarray:
    """float64 ``Σ (q_i − x_i)²`` for query rows ``q`` (B, D) and their candidates ``x[cand]``; blocks
    of query rows are computed in ``threads`` threads (default: faiss's), each value by itself, so
    the result does not depend on the thread count."""
    out = np.empty(cand.shape, dtype=np.float64)
    width = max(1, cand.shape[1]) * max(1, x.shape[1]) * 8
    step = max(1, RERANK_BYTES // width)

    def block(a: int) -> None:
        diff = x[cand[a : a + step]].astype(np.float64) - q[a : a + step, None, :].astype(np.float64)
        out[a : a + step] = np.square(diff).sum(-1)

    starts = range(0, len(q), step)
    workers = min(len(starts), max(1, int(threads or faiss().omp_get_max_threads())))
    if workers <= 1:
        for a in starts:
            block(a)
    else:  # numpy releases the GIL in the gather, the subtraction and the sum
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(block, starts))
    return out


def rank_topk(dist: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` smallest by (distance, id); padding (inf, -1) sorts last."""
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), dist), axis=1)[:, :k]
    return np.take_along_axis(dist, order, 1), np.take_along_axis(ids, order, 1)


def default_margin(k: int) -> int:
    """Extra candidates per query in the first round: 16 for small k, k/4 for large k (kNN's k=1000:
    1,250 candidates, within faiss's GPU limit of 2,048)."""
    return max(16, int(k) // 4)


def exact_topk(index, queries: np.ndarray, k: int, metric: str = "l2", margin: int | None = None,
               max_norm: float | None = None, name: str = "queries", propose=None, duplicates=None,
               stats: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-k of ``queries`` (B, D) in a flat index: float64 squared distances and row ids,
    (B, k) each, padded with (inf, -1) where the index has fewer than k rows.  ``duplicates``: the
    rows the index stores once (:func:`grood.search.build.build_unique_index`), each counted and
    named.  ``max_norm``: the largest stored vector norm, when the caller has it already
    (:func:`largest_norm`).  ``propose(q, kk)``: who proposes the candidates (faiss's float32 top-kk,
    e.g. from the index's GPU copy; it may return None to leave a round to the CPU index); default:
    the CPU index itself.  ``stats``: gets ``rounds`` and ``candidates`` (per query, summed) added."""
    x, row_ids = flat_storage(index)
    n, d = x.shape
    duplicates = no_duplicates() if duplicates is None else check_duplicates(duplicates)
    q = prepare(queries, metric, name)
    out_d = np.full((len(q), k), np.inf)
    out_i = np.full((len(q), k), PAD_ID, dtype=np.int64)
    if n == 0 or len(q) == 0:
        return out_d, out_i
    if max_norm is None:
        max_norm = largest_norm(x)
    q_norms = np.linalg.norm(q.astype(np.float64), axis=1)
    todo = np.arange(len(q))
    extra = int(margin if margin is not None else default_margin(k))
    rounds = 0
    while len(todo):
        kk = min(n, k + extra)
        proposed = propose(q[todo], kk) if propose is not None else None
        approx, cand = proposed if proposed is not None else index_search(index, q[todo], kk)
        pos = _positions(cand, row_ids)
        exact, rid = with_duplicates(canonical_distances(q[todo], x, pos), row_ids[pos], duplicates, k)
        top_d, top_i = rank_topk(exact, rid, min(k, exact.shape[1]))
        bound = certainty_bound(q_norms[todo], max_norm, top_d[:, -1], d)
        certain = (kk == n) | (top_d[:, -1] < approx[:, -1].astype(np.float64) - bound)
        done = todo[certain]
        out_d[done, : top_d.shape[1]] = top_d[certain]
        out_i[done, : top_i.shape[1]] = top_i[certain]
        if stats is not None:
            stats["rounds"] = max(stats.get("rounds", 0), rounds + 1)
            stats["candidates"] = stats.get("candidates", 0) + kk * len(todo)
        todo = todo[~certain]
        extra *= 2
        rounds += 1
        if len(todo):
            log.info("exact search: %d queries re-searched with %d candidates (round %d)", len(todo),
                     min(n, k + extra), rounds)
    return out_d, out_i


def largest_norm(x: np.ndarray) -> float:
    """The largest row norm of ``x`` (float64, read block by block)."""
    best = 0.0
    for _, block in iter_blocks(x):
        if len(block):
            best = max(best, float(np.sqrt(np.square(block, dtype=np.float64).sum(1).max())))
    return best


def index_search(index, q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's own top-``kk`` (float32 distances, the index's ids), with our GEMM blocks."""
    with blas_blocks():
        return index.search(q, kk)


def _positions(cand: np.ndarray, row_ids: np.ndarray) -> np.ndarray:
    """Storage positions of the ids faiss returned (increasing ids, as the builds store them: one
    binary search; else through their order)."""
    if np.array_equal(row_ids, np.arange(len(row_ids))):
        return cand
    if np.all(row_ids[1:] > row_ids[:-1]):
        return np.searchsorted(row_ids, cand)
    order = np.argsort(row_ids, kind="stable")
    return order[np.searchsorted(row_ids[order], cand)]


def merge_topk(parts: list[tuple[np.ndarray, np.ndarray]], k: int, allow_padding: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """The top-k by (distance, row id) of several top-k lists over disjoint rows (shards).
    ``allow_padding``: fewer than k vectors in all is not (yet) an error (a partial merge)."""
    if not parts:
        raise ValueError("no shard results to merge")
    rows = {p[0].shape[0] for p in parts}
    if len(rows) != 1:
        raise ValueError(f"shard results hold different numbers of queries: {sorted(rows)}")
    dist = np.concatenate([np.asarray(p[0], dtype=np.float64) for p in parts], axis=1)
    ids = np.concatenate([np.asarray(p[1], dtype=np.int64) for p in parts], axis=1)
    if dist.shape[1] < k:
        if not allow_padding:
            raise ValueError(f"the shards return {dist.shape[1]} neighbours per query in all, fewer than k={k}")
        pad = k - dist.shape[1]
        dist = np.hstack([dist, np.full((len(dist), pad), np.inf)])
        ids = np.hstack([ids, np.full((len(ids), pad), PAD_ID, dtype=np.int64)])
    top_d, top_i = rank_topk(dist, ids, k)
    if not allow_padding and (top_i == PAD_ID).any():
        raise ValueError(f"the shards hold fewer than k={k} vectors in all; lower k")
    return top_d, top_i


def exact_search(index, queries, k: int, metric: str = "l2", batch_size: int = 4096,
                 name: str = "queries", propose=None, duplicates=None, stats: dict | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_topk` for a row array of queries, streamed in batches (``propose``, ``duplicates``,
    ``stats``: see there)."""
    if len(queries.shape) != 2 or row_width(queries) != index.d:
        raise ValueError(f"queries of shape {tuple(queries.shape)} do not match the index's vector width {index.d}")
    duplicates = no_duplicates() if duplicates is None else check_duplicates(duplicates, "index duplicates")
    n = int(queries.shape[0])
    dist = np.empty((n, k))
    ids = np.empty((n, k), dtype=np.int64)
    norm = largest_norm(flat_storage(index)[0])
    for start, block in iter_blocks(queries, batch_size):
        stop = start + len(block)
        dist[start:stop], ids[start:stop] = exact_topk(index, block, k, metric, max_norm=norm, name=name,
                                                       propose=propose, duplicates=duplicates, stats=stats)
    return dist, ids


__all__ = ["error_bound", "certainty_bound", "flat_storage", "largest_norm", "canonical_distances", "default_margin", "rank_topk",
           "exact_topk", "exact_search", "merge_topk"]
