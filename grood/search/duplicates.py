"""Identical rows of a flat index, collapsed: each distinct vector is stored once.

Why: the canonical exact search (:mod:`grood.search.exact`) is certain of a top-k once faiss's last
proposed distance lies beyond the k-th.  A group of identical vectors larger than the candidate
margin (training rows whose gradient is exactly zero, duplicated images) ties at one distance, every
proposal falls inside it and the margin would double until every vector were a candidate.  Stored
once, the group is one proposal, and faiss proposes past it at once.

Beside the index, ``duplicates``: an (M, 2) int64 array of ``(row id, indexed id)`` pairs — row
``row id`` is left out of the index because it holds the vector of the indexed row ``indexed id``,
the smallest id of its group — sorted by (indexed id, row id).  Without identical rows M = 0 and
the index is the one :func:`grood.search.build.build_index` makes.  The search counts each stored
vector once per row of its group and names those rows in id order (:func:`with_duplicates`): a
group's rows have bit-identical distances, so the (distance, id) top-k over all rows is unchanged.

Identical means equal as floats (−0.0 equals 0.0, which gives the same distances).  Rows are
grouped by a 64-bit hash of their values and each is compared with its group's first row; a row that
differs (a hash collision) stays in the index: the search is right either way, only slower.
"""

from __future__ import annotations

import numpy as np

from grood.storage.chunks import block_rows

#: rows hashed, compared or moved per block: bounds the temporaries (uint64 hashing: 2× the block)
BLOCK_BYTES = 16 << 20
_HASH_SEED = 0x5EED_D0B1


def no_duplicates() -> np.ndarray:
    """The ``duplicates`` of an index without identical rows."""
    return np.empty((0, 2), dtype=np.int64)


def _step(x: np.ndarray) -> int:
    """Rows per block: the uint64 temporaries of ``x``'s rows within :data:`BLOCK_BYTES`."""
    return block_rows(x.shape[1], itemsize=8, target_bytes=BLOCK_BYTES)


def row_hashes(x: np.ndarray) -> np.ndarray:
    """A uint64 hash of each float32 row's values: ``Σ_j bits_j · a_j mod 2⁶⁴`` with fixed random odd
    ``a_j`` (rows that differ in one value never collide); −0.0 hashes as 0.0."""
    a = np.random.default_rng(_HASH_SEED).integers(0, 2**63, x.shape[1], dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    out = np.empty(len(x), dtype=np.uint64)
    step = _step(x)
    for s in range(0, len(x), step):
        bits = (x[s : s + step] + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0: −0.0 → 0.0
        out[s : s + step] = (bits * a).sum(1)  # wraps modulo 2⁶⁴
    return out


def identical_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, first)``: the positions of the rows of ``x`` that equal an earlier row, and the position
    of the first row equal to each, sorted by (first, row)."""
    h = row_hashes(x)
    order = np.argsort(h, kind="stable")  # a bucket's rows in increasing position: its first is first
    hs = h[order]
    starts = np.r_[True, hs[1:] != hs[:-1]]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    rows, first = order[~starts], first[~starts]
    same = np.empty(len(rows), dtype=bool)
    step = _step(x)
    for s in range(0, len(rows), step):
        same[s : s + step] = (x[rows[s : s + step]] == x[first[s : s + step]]).all(1)
    rows, first = rows[same], first[same]
    order = np.lexsort((rows, first))
    return rows[order], first[order]


def compact(x: np.ndarray, keep: np.ndarray) -> None:
    """Move the rows ``keep`` (increasing) of ``x`` to its first ``len(keep)`` rows, in place: each
    row moves up, never onto a row still to be moved, so block by block needs no second buffer."""
    step = _step(x)
    for s in range(0, len(keep), step):
        src = keep[s : s + step]
        x[s : s + len(src)] = x[src]


def collapse(x: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep each distinct row of ``x`` (a flat index's storage, row ids ``ids``, increasing) once, at
    the front of ``x``, in place: ``(the kept rows' ids, duplicates)``."""
    rows, first = identical_rows(x)
    if not len(rows):
        return ids, no_duplicates()
    keep = np.setdiff1d(np.arange(len(x)), rows, assume_unique=True)
    compact(x, keep)
    return ids[keep], np.stack([ids[rows], ids[first]], axis=1).astype(np.int64)


def check_duplicates(duplicates, name: str = "duplicates") -> np.ndarray:
    """``duplicates`` as an (M, 2) int64 array sorted by (indexed id, row id), or an error that says so."""
    dup = np.asarray(duplicates)
    if dup.ndim != 2 or dup.shape[1] != 2 or dup.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected an (M, 2) integer array of (row id, indexed id) pairs, got "
                         f"{dup.dtype} {dup.shape}; fit the detector (build the index) again")
    dup = dup.astype(np.int64, copy=False)
    step_of, step_row = np.diff(dup[:, 1]), np.diff(dup[:, 0])
    if np.any((step_of < 0) | ((step_of == 0) & (step_row <= 0))):
        raise ValueError(f"{name}: the (row id, indexed id) pairs are not sorted by (indexed id, row id); "
                         f"fit the detector (build the index) again")
    return dup


def rows_of(ntotal: int, duplicates: np.ndarray | None) -> int:
    """Rows an index of ``ntotal`` stored vectors stands for."""
    return int(ntotal) + (0 if duplicates is None else len(duplicates))


def with_duplicates(dist: np.ndarray, ids: np.ndarray, duplicates: np.ndarray, k: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (B, C) of a collapsed index with the rows of their groups appended (at most ``k``
    rows per group count: the top-k needs no more), at the candidate's distance; rows padded with
    (inf, −1).  ``ids`` must be the index's ids (−1: none)."""
    if not len(duplicates):
        return dist, ids
    of = duplicates[:, 1]
    lo = np.searchsorted(of, ids, "left")
    extra = np.where(ids >= 0, np.minimum(np.searchsorted(of, ids, "right") - lo, k - 1), 0)
    if not extra.any():
        return dist, ids
    b, c = np.nonzero(extra)  # row-major: by query, then candidate
    counts = extra[b, c]
    seg = np.cumsum(counts) - counts  # where each candidate's rows start, over all queries
    col = seg - seg[np.searchsorted(b, b, "left")]  # … within its query's appended columns
    total = int(counts.sum())
    within = np.arange(total) - np.repeat(seg, counts)
    qb, start = np.repeat(b, counts), np.repeat(col, counts)
    width = dist.shape[1] + int(extra.sum(1).max())
    out_d = np.full((len(dist), width), np.inf)
    out_i = np.full((len(dist), width), -1, dtype=np.int64)
    out_d[:, : dist.shape[1]], out_i[:, : ids.shape[1]] = dist, ids
    cols = dist.shape[1] + start + within
    out_d[qb, cols] = np.repeat(dist[b, c], counts)
    out_i[qb, cols] = duplicates[np.repeat(lo[b, c], counts) + within, 0]
    return out_d, out_i


__all__ = ["no_duplicates", "row_hashes", "identical_rows", "compact", "collapse", "check_duplicates", "rows_of",
           "with_duplicates"]
