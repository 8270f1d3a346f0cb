"""IVF-Flat search on the CPU as one GEMM per cell: the queries that probe a cell, against its vectors.

faiss's CPU IVF-Flat search takes one query at a time and compares it with each vector of its
``nprobe`` cells (``fvec_L2sqr`` per pair): every visited vector is read from memory once per query,
so the search is bound by memory traffic, not arithmetic.  Measured (``python -m benchmarks.bench`` case
8, 1M × 512, nprobe=32 of 1,024 cells): it visits ≈ 3% of the vectors yet ran only 2–3× faster
than the exact search, a blocked GEMM that reuses each vector across thousands of queries.

Here the work is regrouped by cell: the queries are assigned their ``nprobe`` cells by the index's
own coarse quantiser (the same cells faiss would probe), and for each cell the queries that probe
it are multiplied with its vectors in one float32 GEMM (``‖x‖² − 2 q·x``: ``‖q‖²`` does not change a
query's ranking), keeping each (query, cell) pair's best ``k``.  Each query's candidates from all
its cells are narrowed to the best ``k + MARGIN``, which are ranked by their distance recomputed in
float64 (``Σ (q_i − x_i)²``), ties by vector id, so the GEMM's rounding cannot reorder near
neighbours and the returned distances are exact.  The candidates visited are exactly faiss's;
results equal faiss's up to its float32 rounding of near ties.
"""

from __future__ import annotations

import numpy as np

from grood.search.exact import rank_topk
from grood.search.vectors import faiss

#: extra candidates kept per query (from the best k of each of its cells) for the float64 re-ranking
MARGIN = 4
#: the distance faiss reports for a missing neighbour (its heaps start at the largest float32)
FAISS_PAD = float(np.finfo(np.float32).max)
#: (query, probe, neighbour) candidates held at once (20 bytes each): larger batches are split
CANDIDATES = 1 << 22
#: (queries × vectors) floats of one cell's distance block before it is split by query rows
BLOCK_FLOATS = 1 << 24


def is_ivf_flat(index) -> bool:
    """True for a CPU ``IndexIVFFlat`` with L2 distances (what :func:`search_ivf_flat` handles)."""
    fs = faiss()
    return isinstance(index, fs.IndexIVFFlat) and index.metric_type == fs.METRIC_L2


def cell_vectors(invlists, cell: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, d) float32, ids (n,) int64) stored in one cell, as views without copies."""
    fs = faiss()
    n = invlists.list_size(cell)
    if n == 0:
        return np.empty((0, d), np.float32), np.empty(0, np.int64)
    x = fs.rev_swig_ptr(invlists.get_codes(cell), n * d * 4).view(np.float32).reshape(n, d)
    ids = fs.rev_swig_ptr(invlists.get_ids(cell), n).view(np.int64)
    return x, ids


def _smallest(dist: np.ndarray, m: int) -> np.ndarray:
    """Column positions of the ``m`` smallest per row (unordered)."""
    if m >= dist.shape[1]:
        return np.broadcast_to(np.arange(dist.shape[1]), dist.shape)
    if m == 1:
        return dist.argmin(1)[:, None]
    return np.argpartition(dist, m - 1, axis=1)[:, :m]


def search_ivf_flat(index, q: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (float32 squared L2 distances, int64 ids) of prepared queries ``q`` (B, d) in an
    ``IndexIVFFlat``, probing ``nprobe`` cells (default: the index's); where the probed cells hold
    fewer than ``k`` vectors the rest is padded as faiss pads: (largest float32, -1)."""
    if not is_ivf_flat(index):
        raise TypeError(f"search_ivf_flat needs a CPU IndexIVFFlat with L2 distances, got {type(index).__name__}")
    q = np.ascontiguousarray(q, dtype=np.float32)
    nprobe = int(min(nprobe or index.nprobe, index.nlist))
    rows = max(1, CANDIDATES // (nprobe * k))  # bounds the (queries, nprobe, k) candidate arrays
    if len(q) <= rows:
        return _search(index, q, k, nprobe)
    parts = [_search(index, q[a : a + rows], k, nprobe) for a in range(0, len(q), rows)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _search(index, q: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`search_ivf_flat` for one batch of queries."""
    b, d = q.shape
    _, cells = index.quantizer.search(q, nprobe)  # the cells faiss's own search probes
    q_m2 = q * np.float32(-2.0)  # the GEMM gives −2 q·x; ‖q‖² is the same for all of a query's vectors
    # each (query, probe) pair's best k by ‖x‖² − 2 q·x, padded with (inf, -1), and their cell offsets
    cand_d = np.full((b, nprobe, k), np.inf, dtype=np.float32)
    cand_i = np.full((b, nprobe, k), -1, dtype=np.int64)
    cand_o = np.zeros((b, nprobe, k), dtype=np.int64)
    flat_cells = cells.ravel()
    order = np.argsort(flat_cells, kind="stable")
    bounds = np.searchsorted(flat_cells[order], np.arange(index.nlist + 1))
    invlists = index.invlists
    for cell in np.flatnonzero(np.diff(bounds)):
        x, ids = cell_vectors(invlists, int(cell), d)
        if len(x) == 0:
            continue
        pairs = order[bounds[cell] : bounds[cell + 1]]  # positions in (query, probe) order
        x_sq = np.einsum("ij,ij->i", x, x)
        m = min(k, len(x))
        step = max(1, BLOCK_FLOATS // len(x))
        for a in range(0, len(pairs), step):
            rows, probes = np.divmod(pairs[a : a + step], nprobe)
            dist = q_m2[rows] @ x.T
            dist += x_sq
            top = _smallest(dist, m)
            cand_d[rows, probes, :m] = np.take_along_axis(dist, top, 1)
            cand_i[rows, probes, :m] = ids[top]
            cand_o[rows, probes, :m] = top
    # the best k + MARGIN by the GEMM's distance, re-ranked by the float64 distance, ties by id
    width = nprobe * k
    m = min(k + MARGIN, width)
    top = _smallest(cand_d.reshape(b, width), m)
    ids = np.take_along_axis(cand_i.reshape(b, width), top, 1)
    offsets = np.take_along_axis(cand_o.reshape(b, width), top, 1)
    top_cells = np.take_along_axis(cells, top // k, 1)
    exact = np.full(ids.shape, np.inf)
    found = ids >= 0
    exact[found] = _sq_dist_to_stored(invlists, q, np.nonzero(found)[0], top_cells[found], offsets[found])
    out_d, out_i = rank_topk(exact, ids, k)  # m ≥ k columns: k of them, missing neighbours (inf, -1) last
    out_d[out_i < 0] = FAISS_PAD
    return out_d.astype(np.float32), out_i


def _sq_dist_to_stored(invlists, q: np.ndarray, rows: np.ndarray, cells: np.ndarray, offsets: np.ndarray
                       ) -> np.ndarray:
    """float64 ``Σ (q_row − x)²`` for each (query row, vector at ``offset`` in ``cell``) pair; an
    IVF-Flat index stores its vectors unchanged."""
    out = np.empty(len(rows))
    d = q.shape[1]
    for c in np.unique(cells):
        sel = np.flatnonzero(cells == c)
        x, _ = cell_vectors(invlists, int(c), d)
        diff = x[offsets[sel]].astype(np.float64) - q[rows[sel]].astype(np.float64)
        out[sel] = np.einsum("ij,ij->i", diff, diff)
    return out


__all__ = ["MARGIN", "is_ivf_flat", "cell_vectors", "search_ivf_flat"]
