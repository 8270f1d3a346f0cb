"""Read big row arrays a block of rows at a time: numpy arrays and Zarr arrays alike.

Everything that fits a detector or builds an index at ImageNet size (1.28M rows × 2048 floats,
10 GB per array) reads its input through these helpers, so no array is ever held whole in memory.
A "row array" is anything with ``.shape`` and row slicing (``a[i:j]``): a numpy array, a
``zarr.Array`` or a :class:`RowWindow` over one of them.

Block sizes depend only on the row width (:func:`block_rows`), never on how a store is chunked, so
the same data read from memory or from any Zarr store passes through the very same blocks — the
faiss calls on them, and their float32 results, are then the same too.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

#: bytes of one block of rows; 64 MB keeps a job's working memory far below its data
BLOCK_BYTES = 64 << 20


def block_rows(width: int, itemsize: int = 4, target_bytes: int | None = None) -> int:
    """Rows per block: the largest power of two whose rows fit ``target_bytes`` (default
    :data:`BLOCK_BYTES`), at least 1.

    A power of two divides the power-of-two chunk rows the stages write (``batch_size``), so a
    block reads whole chunks.
    """
    row_bytes = max(1, int(width) * int(itemsize))
    rows = max(1, int(target_bytes or BLOCK_BYTES) // row_bytes)
    return 1 << (rows.bit_length() - 1)


def row_width(array) -> int:
    """Values per row (the product of the trailing dimensions)."""
    return int(np.prod(array.shape[1:], dtype=np.int64)) if len(array.shape) > 1 else 1


def default_block_rows(array) -> int:
    return block_rows(row_width(array), np.dtype(array.dtype).itemsize)


class RowWindow:
    """Rows ``[start, stop)`` of a row array, without reading them (a shard's part of a store)."""

    def __init__(self, array, start: int, stop: int):
        n = int(array.shape[0])
        if not 0 <= int(start) <= int(stop) <= n:
            raise ValueError(f"row window [{start}, {stop}) lies outside the {n} rows of the array")
        self.array, self.start, self.stop = array, int(start), int(stop)
        self.shape = (self.stop - self.start, *array.shape[1:])
        self.dtype = array.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a RowWindow reads contiguous row slices only")
        a, b, _ = key.indices(self.shape[0])
        return np.asarray(self.array[self.start + a : self.start + max(a, b)])

    def __array__(self, dtype=None, copy=None):
        """The whole window (for code that wants a numpy array, e.g. a detector that does not stream)."""
        values = self[:]
        return values if dtype is None else values.astype(dtype)


def iter_blocks(array, rows: int | None = None, start: int = 0, stop: int | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, block)`` for consecutive blocks of ``rows`` rows of ``array[start:stop]``."""
    n = int(array.shape[0])
    stop = n if stop is None else int(stop)
    rows = int(rows or default_block_rows(array))
    if rows < 1:
        raise ValueError(f"rows per block must be ≥ 1, got {rows}")
    for i in range(int(start), stop, rows):
        yield i, np.asarray(array[i : min(i + rows, stop)])


def check_rows(name: str, n: int, **arrays) -> None:
    """All ``arrays`` have ``n`` rows, or an error that names the one that does not."""
    for key, a in arrays.items():
        if a is not None and int(a.shape[0]) != int(n):
            raise ValueError(f"{name}: {key} has {a.shape[0]} rows, expected {n} (one per sample)")


def seeded_sample(candidates: np.ndarray | int, size: int, seed: int) -> np.ndarray:
    """``size`` distinct entries of ``candidates`` (or of ``range(candidates)``) drawn with ``seed``,
    in increasing order (so reading them is one forward pass); all of them when there are fewer."""
    pool = np.arange(candidates) if np.isscalar(candidates) else np.asarray(candidates)
    if size >= len(pool):
        return np.sort(pool)
    pick = np.random.default_rng(seed).choice(len(pool), size=int(size), replace=False)
    return np.sort(pool[pick])


def take_rows(array, rows: np.ndarray, block: int | None = None) -> np.ndarray:
    """``array[rows]`` for increasing ``rows``, reading only the blocks that hold them."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (np.any(np.diff(rows) < 0) or rows[0] < 0 or rows[-1] >= array.shape[0]):
        raise ValueError(f"rows to take must be increasing and inside [0, {array.shape[0]})")
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    block = int(block or default_block_rows(array))
    i = 0
    while i < len(rows):
        first = int(rows[i]) // block * block
        j = int(np.searchsorted(rows, first + block, side="left"))
        chunk = np.asarray(array[first : min(first + block, array.shape[0])])
        out[i:j] = chunk[rows[i:j] - first]
        i = j
    return out


def open_arrays(stores, names, rows: tuple[int, int] | None = None) -> dict:
    """Named arrays from several Zarr stores, **lazily** (each name from the first store holding it):
    ``zarr.Array``s, or :class:`RowWindow`s over rows ``[start, stop)``.  The streaming counterpart
    of ``grood.stages.io.load_arrays``: detectors read them block by block (GROOD, kNN, Mahalanobis)
    or whole through ``np.asarray`` (the others)."""
    from pathlib import Path

    import zarr

    found: dict = {}
    for store in stores:
        if not Path(store).exists():
            raise FileNotFoundError(f"Zarr store {store} does not exist; re-run the rule that makes it")
        for name, array in zarr.open_group(str(store), mode="r").arrays():
            if name in names and name not in found:
                found[name] = array if rows is None else RowWindow(array, *rows)
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"array(s) {missing} are in none of {[str(s) for s in stores]}")
    return found


def open_array(store, name: str):
    """The lazy ``zarr.Array`` ``name`` of the Zarr group at ``store`` (errors name the store)."""
    from pathlib import Path

    import zarr

    if not Path(store).exists():
        raise FileNotFoundError(f"Zarr store {store} does not exist; re-run the rule that makes it")
    group = zarr.open_group(str(store), mode="r")
    names = sorted(k for k, _ in group.arrays())
    if name not in names:
        raise KeyError(f"{store} has no array {name!r}; it holds {names}")
    return group[name]


__all__ = ["BLOCK_BYTES", "block_rows", "default_block_rows", "row_width", "RowWindow", "iter_blocks",
           "check_rows", "seeded_sample", "take_rows", "open_arrays", "open_array"]
