"""Search an index too large for one machine in row shards (separate jobs) and merge them exactly.

Shard ``i`` of ``S`` indexes rows ``grood.storage.shards.row_ranges(N, S, align)[i]`` of the vector store
(with the same ``mask`` as the whole index, e.g. GROOD's correctly classified rows), searches every
query and writes its top-k — distances and **global row ids** — to an ``.npz`` with the shard's
metadata.  :func:`merge_shard_files` checks that the shards tile the rows and merges them with
:func:`grood.search.exact.merge_topk`.  For the exact (``flat``) kind, each shard's top-k is canonical
(:mod:`grood.search.exact`; a shard stores its identical rows once and names them all), so the
merge equals the unsharded exact search bit for bit, ties included, wherever the shards split a
group of identical rows.  Approximate kinds merge faiss's own distances: each shard trains its own quantisers, so
the merged result is a valid approximate search, not the unsharded approximate index's result.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from grood.storage.chunks import row_width
from grood.search.build import build_unique_index
from grood.search.duplicates import rows_of
from grood.search.exact import PAD_ID, exact_search, merge_topk
from grood.search.query import search
from grood.search.spec import IndexSpec
from grood.storage.shards import check_cover, shard_attrs, shard_rows
from grood.storage import load_npz, provenance, save_npz

log = logging.getLogger(__name__)

#: metadata that every shard of one search must share
SHARED_META = ("k", "n_queries", "index", "n_rows_total")


def build_shard_index(vectors, shard: int, shards: int, spec: IndexSpec | None = None,
                      mask: np.ndarray | None = None, align: int = 1):
    """(index over the shard's rows with global row ids, the rows it stores once — see
    :func:`grood.search.build.build_unique_index` —, the shard's row range, total rows)."""
    spec = spec or IndexSpec()
    n = int(vectors.shape[0])
    rows = shard_rows(n, shard, shards, align)
    index, duplicates = build_unique_index(vectors, spec, mask, rows, row_ids=True, name=f"index shard {shard}/{shards}")
    return index, duplicates, rows, n


def search_index_shard(index, queries, k: int, spec: IndexSpec, use_gpu: bool | str = "auto", duplicates=None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (float64 distances, global row ids) of every query in one shard's index (``duplicates``:
    the rows it stores once); a shard with fewer than k rows pads with (inf, -1).  ``use_gpu``:
    faiss proposes on a GPU (exact: the same result)."""
    from grood.search.query import gpu_proposer

    n_q = int(queries.shape[0])
    if index.ntotal == 0:
        return np.full((n_q, k), np.inf), np.full((n_q, k), PAD_ID, dtype=np.int64)
    if spec.exact:
        return exact_search(index, queries, k, spec.metric, propose=gpu_proposer(index, use_gpu),
                            duplicates=duplicates)
    kk = min(k, index.ntotal)
    dist, ids = search(index, queries, kk, spec.metric, use_gpu)
    dist = np.where(ids < 0, np.inf, dist.astype(np.float64))  # an IVF probe can find < kk vectors
    pad = k - kk
    if pad:
        dist = np.hstack([dist, np.full((n_q, pad), np.inf)])
        ids = np.hstack([ids, np.full((n_q, pad), PAD_ID, dtype=np.int64)])
    return dist, ids


def search_shard(vectors, queries, k: int, shard: int, shards: int, spec: IndexSpec | None = None,
                 mask: np.ndarray | None = None, align: int = 1, out_npz: str | os.PathLike | None = None,
                 source: str = "", use_gpu: bool | str = "auto") -> tuple[np.ndarray, np.ndarray, dict]:
    """One shard job: index shard ``shard`` of ``shards`` of ``vectors`` and search all ``queries``.

    ``align``: shard rows start on multiples of it (the store's chunk rows, so a shard reads whole
    chunks).  Writes ``distances``/``ids`` + metadata to ``out_npz`` when given; returns all three.
    """
    spec = spec or IndexSpec()
    if row_width(queries) != row_width(vectors):
        raise ValueError(f"queries have width {row_width(queries)}, the indexed vectors {row_width(vectors)}")
    if int(k) < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    index, duplicates, rows, n = build_shard_index(vectors, shard, shards, spec, mask, align)
    dist, ids = search_index_shard(index, queries, int(k), spec, use_gpu, duplicates)
    meta = provenance(source=str(source), k=int(k), n_queries=int(queries.shape[0]), index=spec.to_dict(),
                      n_indexed=rows_of(index.ntotal, duplicates), canonical=spec.exact,
                      **shard_attrs(shard, shards, rows, n))
    if out_npz is not None:
        save_npz(out_npz, {"distances": dist, "ids": ids}, meta)
    log.info("index shard %d/%d: rows [%d, %d), %d vectors, %d queries", shard, shards, *rows,
             meta["n_indexed"], queries.shape[0])
    return dist, ids, meta


def merge_shard_results(parts: list[tuple[np.ndarray, np.ndarray, dict]], what: str = "sharded search"
                        ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Merge the results of all shards (in shard order) into the top-k over all rows."""
    metas = [("shard result", m) for _, _, m in parts]
    check_cover(metas, what)
    first = parts[0][2]
    for _, _, meta in parts[1:]:
        differ = [key for key in SHARED_META if meta.get(key) != first.get(key)]
        if differ:
            raise ValueError(f"{what}: shard {meta.get('shard')} differs from shard 0 in {differ}; "
                             f"all shards must search the same queries with the same index settings")
    k = int(first["k"])
    dist, ids = merge_topk([(d, i) for d, i, _ in parts], k)
    meta = provenance(k=k, n_queries=first["n_queries"], index=first["index"], n_rows_total=first["n_rows_total"],
                      canonical=all(m.get("canonical") for _, _, m in parts),
                      sharded_from={"count": len(parts), "rows": [m["rows"] for _, _, m in parts]})
    return dist, ids, meta


def merge_shard_files(paths: list[str | os.PathLike], out_npz: str | os.PathLike | None = None
                      ) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`merge_shard_results` over the ``.npz`` files of :func:`search_shard`; written atomically
    to ``out_npz`` when given."""
    parts = []
    for p in paths:
        arrays, meta = load_npz(p, ["distances", "ids"])
        if set(arrays) != {"distances", "ids"}:
            raise ValueError(f"{p} is not a shard search result (it lacks distances/ids); re-run its shard job")
        parts.append((arrays["distances"], arrays["ids"], meta))
    dist, ids, meta = merge_shard_results(parts, what=str(out_npz or "sharded search"))
    meta["files"] = [str(p) for p in paths]
    if out_npz is not None:
        save_npz(out_npz, {"distances": dist, "ids": ids}, meta)
    return dist, ids, meta


__all__ = ["build_shard_index", "search_index_shard", "search_shard", "merge_shard_results", "merge_shard_files"]
