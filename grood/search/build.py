"""Build a faiss index from a row array (in memory or a Zarr store) one block of rows at a time.

The quantisers of the IVF kinds are trained on a seeded sample of the indexed rows (read row block
by row block, never the whole array); vectors are then added block by block.  Memory: the index
itself plus one block and the training sample — for ``flat`` and ``ivf_flat`` the index holds every
vector (4·D bytes each), for ``ivf_pq`` ``m`` bytes each (plus an 8-byte id).  A ``flat`` index is
sized once and filled in place (:func:`fill_flat`): faiss's ``add`` grows its storage by
reallocation, so the last adds briefly held the old and the new buffer (measured: +55% peak RSS
beyond the index at 500k × 512); it is filled 16 MB at a time with glibc's mmap threshold fixed
(:mod:`grood.search.memory`).

Blocks depend only on the vector width (:func:`grood.storage.chunks.block_rows`), so building from memory
and from any Zarr store of the same rows gives the same index, bit for bit.

The detectors and index shards build with :func:`build_unique_index`: for the exact kind, identical
rows are stored once and listed beside the index (:mod:`grood.search.duplicates`), which the
canonical exact search needs to pass a large group of tied vectors; the approximate kinds keep
every row (their search does not count duplicates).
"""

from __future__ import annotations

import logging

import numpy as np

from grood.storage.chunks import block_rows, check_rows, iter_blocks, row_width, seeded_sample, take_rows
from grood.search.duplicates import collapse, no_duplicates
from grood.search.memory import fixed_mmap_threshold
from grood.search.kinds import KINDS
from grood.search.spec import IndexSpec
from grood.search.vectors import faiss, prepare

log = logging.getLogger(__name__)

#: bytes per block when filling a flat index: its bytes do not depend on the blocks, and smaller
#: blocks keep the transient beside the index small (measured, grood.search.memory)
FILL_BYTES = 16 << 20


def empty_index(spec: IndexSpec, d: int, n: int):
    """An untrained faiss index of ``spec``'s kind for ``n`` vectors of width ``d`` (its row of
    :data:`grood.search.kinds.KINDS` makes it)."""
    spec.check_width(d)
    return KINDS[spec.kind].make(spec, d, n)


def selected_rows(mask: np.ndarray | None, n: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Row numbers in ``[start, stop)`` that ``mask`` keeps (all of them without a mask)."""
    stop = n if stop is None else stop
    if mask is None:
        return np.arange(start, stop)
    return start + np.flatnonzero(np.asarray(mask[start:stop], dtype=bool))


def training_sample(source, spec: IndexSpec, rows: np.ndarray, block: int) -> np.ndarray:
    """The prepared seeded training sample of ``spec`` from the candidate ``rows`` of ``source``."""
    picked = seeded_sample(rows, spec.training_rows(len(rows)), spec.seed)
    return prepare(take_rows(source, picked, block), spec.metric, "index training vectors")


def build_index(source, spec: IndexSpec | None = None, mask: np.ndarray | None = None,
                rows: tuple[int, int] | None = None, row_ids: bool = False, block: int | None = None,
                name: str = "index vectors"):
    """A CPU faiss index of ``spec`` over the rows of ``source`` (an (N, D) row array).

    ``mask`` (N booleans) keeps only some rows (GROOD: the correctly classified ones); ``rows=(a, b)``
    indexes only that row range (a shard).  The index's ids are the positions among the kept rows,
    or with ``row_ids=True`` the row numbers in ``source`` (an ``IndexIDMap2``, for shards whose
    results must name global rows).  ``block`` overrides the rows per read (tests).
    """
    return _build(source, spec, mask, rows, row_ids, block, name, unique=False)[0]


def build_unique_index(source, spec: IndexSpec | None = None, mask: np.ndarray | None = None,
                       rows: tuple[int, int] | None = None, row_ids: bool = False, block: int | None = None,
                       name: str = "index vectors") -> tuple[object, np.ndarray]:
    """``(index, duplicates)``: :func:`build_index`, with each group of identical rows stored once for
    the exact kind (:mod:`grood.search.duplicates`: the pairs of left-out row id and the id it equals;
    the index then holds its ids in an ``IndexIDMap2``).  Search it with the duplicates
    (:func:`grood.search.exact.exact_search`).  Approximate kinds: :func:`build_index` and no duplicates."""
    spec = spec or IndexSpec()
    return _build(source, spec, mask, rows, row_ids, block, name, unique=KINDS[spec.kind].exact)


def _build(source, spec, mask, rows, row_ids, block, name, unique: bool):
    """``(index, duplicates)`` of :func:`build_index` (``unique``: identical rows stored once)."""
    spec = spec or IndexSpec()
    if len(source.shape) != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(source.shape)}")
    n, d = int(source.shape[0]), row_width(source)
    check_rows(name, n, mask=mask)
    start, stop = (0, n) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= start <= stop <= n:
        raise ValueError(f"{name}: rows [{start}, {stop}) lie outside [0, {n})")
    keep = selected_rows(mask, n, start, stop)
    if len(keep) == 0 and not row_ids:
        raise ValueError(f"{name}: no row to index (rows [{start}, {stop}), {0 if mask is None else int(np.sum(mask))} kept by the mask)")
    read = int(block or block_rows(d))
    index = empty_index(spec, d, len(keep))
    duplicates = no_duplicates()
    if spec.needs_training and len(keep):
        x = training_sample(source, spec, keep, read)
        index.train(x)
        log.info("%s: trained %s (nlist=%d) on %d of %d rows", name, spec.kind, index.nlist, len(x), len(keep))
        del x
    if KINDS[spec.kind].in_place:  # flat: sized once and filled in place
        fixed_mmap_threshold()  # block buffers in their own mappings: no heap creep over the blocks
        blocks = kept_blocks(source, keep, int(block or block_rows(d, target_bytes=FILL_BYTES)), (start, stop),
                             spec.metric, name)
        index, duplicates = fill_flat(index, blocks, len(keep), row_ids, keep, collapse_identical=unique)
    else:
        if row_ids:
            index = faiss().IndexIDMap2(index)  # faiss' Python wrapper keeps the inner index alive
        for x, ids in kept_blocks(source, keep, read, (start, stop), spec.metric, name):
            if len(x) and row_ids:
                index.add_with_ids(x, ids)
            elif len(x):
                index.add(x)
    log.info("%s: %s index of %d vectors (d=%d)%s", name, spec.kind, index.ntotal, d,
             f", {len(duplicates)} identical rows stored once" if len(duplicates) else "")
    return index, duplicates


def kept_blocks(source, keep: np.ndarray, block: int, rows: tuple[int, int], metric: str, name: str):
    """``(prepared vectors, their row numbers)`` of the rows ``keep`` (increasing) of ``source``, one
    block of ``rows`` at a time; every row of ``rows`` is checked, kept or not."""
    for first, values in iter_blocks(source, block, *rows):
        x = prepare(values, metric, name)
        a, b = np.searchsorted(keep, [first, first + len(values)])
        if b - a == len(values):  # the whole block is kept: no copy
            yield x, keep[a:b]
        else:
            yield x[keep[a:b] - first], keep[a:b]


def fill_flat(index, blocks, n: int, row_ids: bool, ids: np.ndarray, collapse_identical: bool = False):
    """``(index, duplicates)``: the empty flat ``index`` filled in place with the ``n`` vectors of
    ``blocks`` (as :func:`kept_blocks` yields them): its storage is sized once and each block is
    copied into it, so the peak is the index plus one block (faiss's ``add`` would reallocate as it
    grows).  The bytes equal those ``add`` writes; with ``row_ids`` the ids are ``ids`` (an
    ``IndexIDMap2``).  ``collapse_identical``: each group of identical rows is then stored once, in
    place (:func:`grood.search.duplicates.collapse`), and the index gets its ids in an
    ``IndexIDMap2`` when a row was left out; else the duplicates are none."""
    fs = faiss()
    d = index.d
    mapped = fs.IndexIDMap2(index)  # faiss wants it empty; the wrapper keeps it alive
    index.codes.resize(n * d * 4)
    stored = fs.rev_swig_ptr(index.codes.data(), n * d * 4).view(np.float32).reshape(n, d) if n else None
    filled = 0
    for x, _ in blocks:
        if len(x):
            stored[filled : filled + len(x)] = x
            filled += len(x)
    assert filled == n, (filled, n)
    index.ntotal = n
    ids = np.asarray(ids if row_ids else np.arange(n), dtype=np.int64)
    duplicates = no_duplicates()
    if collapse_identical and n:
        ids, duplicates = collapse(stored, ids)
        index.codes.resize(len(ids) * d * 4)  # shrinks in place: the left-out rows were at the end
        index.ntotal = len(ids)
    if not (row_ids or len(duplicates)):
        return index, duplicates
    fs.copy_array_to_vector(np.ascontiguousarray(ids), mapped.id_map)
    mapped.ntotal = len(ids)
    mapped.construct_rev_map()
    return mapped, duplicates


__all__ = ["build_index", "build_unique_index", "kept_blocks", "fill_flat", "empty_index", "selected_rows", "training_sample"]
