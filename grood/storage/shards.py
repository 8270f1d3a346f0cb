"""Scatter/gather: split a stage's rows into N shards and merge the shards' outputs exactly.

A shard is a half-open row range.  ``row_ranges(n, N)`` is the plain split — shard ``i`` covers
``[floor(i·n/N), floor((i+1)·n/N))``.  With ``align=B`` the same split is made over *blocks* of B
rows instead of rows (the last block absorbs the ``n mod B`` tail), so every shard starts at a
multiple of B.  Why: a network's float32 outputs depend on which images share its batch (on CPU a
batch of one differs from the same image inside a larger batch by ~1e-8; BLAS takes another kernel
for a single row).  A feature shard aligned to the feature batch size runs *exactly* the batches of
the unsharded run, so the merge is byte-identical by construction, and each shard fills whole Zarr
chunks (chunk rows = batch size).

Shards may be empty (``N`` greater than the number of blocks): the shard count is fixed when the
workflow's DAG is built, the row count only once a job reads the data.  Empty shards write empty
outputs and the merge skips them.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from grood.storage import ZarrWriter, atomic_path, provenance

log = logging.getLogger(__name__)

#: attrs a shard's Zarr store carries about itself; the merged store keeps them under ``shards``
SHARD_ATTRS = ("shard", "shards", "rows", "n_rows_total")


def row_ranges(n: int, shards: int, align: int = 1) -> list[tuple[int, int]]:
    """The ``shards`` consecutive ``(start, stop)`` ranges that partition ``[0, n)``.

    Shard ``i`` gets blocks ``[floor(i·nb/N), floor((i+1)·nb/N))`` of the ``nb`` blocks of ``align``
    rows (``nb = n // align``, the tail joining the last block; one block when ``0 < n < align``).
    With ``align=1`` that is rows ``[floor(i·n/N), floor((i+1)·n/N))``.  Ranges may be empty.
    """
    n, shards, align = int(n), int(shards), int(align)
    if n < 0:
        raise ValueError(f"row count must be ≥ 0, got {n}")
    if shards < 1:
        raise ValueError(f"shard count must be ≥ 1, got {shards}")
    if align < 1:
        raise ValueError(f"shard alignment must be ≥ 1 row, got {align}")
    nb = n // align if n >= align else int(n > 0)
    bounds = [min(j * align, n) for j in range(nb)] + [n]  # block j = [bounds[j], bounds[j+1])
    return [(bounds[i * nb // shards], bounds[(i + 1) * nb // shards]) for i in range(shards)]


def shard_rows(n: int, shard: int, shards: int, align: int = 1) -> tuple[int, int]:
    """Row range of shard ``shard`` (0-based) of ``shards``; see :func:`row_ranges`."""
    if not 0 <= int(shard) < int(shards):
        raise ValueError(f"shard index {shard} is outside [0, {shards})")
    return row_ranges(n, shards, align)[int(shard)]


def shard_attrs(shard: int, shards: int, rows: tuple[int, int], n_total: int) -> dict:
    return {"shard": int(shard), "shards": int(shards), "rows": [int(rows[0]), int(rows[1])],
            "n_rows_total": int(n_total)}


def _check_cover(parts: list[tuple[str, dict]], what: str) -> int:
    """Check that shards ``0..N-1`` are all present, in order, and tile ``[0, n)``; return n."""
    if not parts:
        raise ValueError(f"no shards to merge into {what}")
    count = parts[0][1].get("shards")
    totals = {meta.get("n_rows_total") for _, meta in parts}
    if len(totals) != 1 or None in totals:
        raise ValueError(f"shards of {what} disagree on the total row count ({sorted(map(str, totals))}); "
                         f"they come from different data: delete them and re-run")
    n = totals.pop()
    if [meta.get("shard") for _, meta in parts] != list(range(len(parts))) or count != len(parts):
        raise ValueError(f"{what}: expected shards 0..{count - 1 if count else '?'} of {count} in order, "
                         f"got {[(p, m.get('shard'), m.get('shards')) for p, m in parts]}")
    stop = 0
    for path, meta in parts:
        a, b = meta["rows"]
        if a != stop or b < a:
            raise ValueError(f"{what}: shard {path} covers rows [{a}, {b}) but the previous shards "
                             f"end at {stop}; shards must tile [0, {n}) — re-run them")
        stop = b
    if stop != n:
        raise ValueError(f"{what}: shards cover rows [0, {stop}) of {n}")
    return n


#: public name: the index shards (:mod:`grood.search.sharded`) check their cover the same way
check_cover = _check_cover


def merge_zarr(shard_stores: list[str | os.PathLike], out_zarr: str | os.PathLike, chunk_rows: int) -> None:
    """Concatenate the rows of shard Zarr stores (written by a stage with ``shard=``) into one
    store, atomically, with ``chunk_rows``-row chunks; arrays, dtypes and values as the unsharded
    stage writes them.  The merged attrs are shard 0's provenance plus ``sharded_from``."""
    import zarr

    groups = [zarr.open_group(str(s), mode="r") for s in shard_stores]
    parts = [(str(s), dict(g.attrs)) for s, g in zip(shard_stores, groups)]
    n = _check_cover(parts, str(out_zarr))
    names: dict[str, tuple] = {}
    for (path, meta), g in zip(parts, groups):
        arrays = dict(g.arrays())
        rows = meta["rows"][1] - meta["rows"][0]
        if rows and names and set(arrays) != set(names):
            raise ValueError(f"{path} holds arrays {sorted(arrays)}, the other shards {sorted(names)}")
        for k, a in arrays.items():
            if a.shape[0] != rows:
                raise ValueError(f"{path}/{k} has {a.shape[0]} rows, its attrs say {rows}")
            names.setdefault(k, (a.dtype, a.shape[1:]))
            if (a.dtype, a.shape[1:]) != names[k]:
                raise ValueError(f"{path}/{k}: dtype/shape {a.dtype}{a.shape[1:]} differ from the "
                                 f"other shards' {names[k]}")
    attrs = {k: v for k, v in parts[0][1].items() if k not in SHARD_ATTRS}
    attrs.update(provenance(sharded_from={"count": len(parts), "stores": [p for p, _ in parts],
                                          "rows": [m["rows"] for _, m in parts],
                                          "created": [m.get("created") for _, m in parts]}))
    with ZarrWriter(out_zarr, n, chunk_rows, attrs) as w:
        for (_, meta), g in zip(parts, groups):
            a0, b0 = meta["rows"]
            arrays = dict(g.arrays())
            for start in range(a0, b0, chunk_rows):  # shards start on chunk boundaries when aligned
                stop = min(start + chunk_rows, b0)
                w.write(start, **{k: arr[start - a0 : stop - a0] for k, arr in arrays.items()})
    log.info("merged %d shards (%d rows) → %s", len(parts), n, out_zarr)


def merge_npz_rows(shard_npzs: list[str | os.PathLike], out_npy: str | os.PathLike, key: str = "scores",
                   dtype=np.float64) -> dict:
    """Concatenate ``key`` of shard ``.npz`` files (with shard meta) into one ``.npy``, atomically;
    returns the provenance of the merge (which shards, which rows)."""
    from grood.storage import load_npz

    loaded = [(str(p), *load_npz(p)) for p in shard_npzs]
    parts = [(p, meta) for p, _, meta in loaded]
    n = _check_cover(parts, str(out_npy))
    values = []
    for path, arrays, meta in loaded:
        v = arrays[key]
        if len(v) != meta["rows"][1] - meta["rows"][0]:
            raise ValueError(f"{path}: {len(v)} {key} for rows {meta['rows']}")
        values.append(np.asarray(v, dtype=dtype))
    merged = np.concatenate(values) if values else np.empty(0, dtype)
    assert len(merged) == n
    with atomic_path(out_npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, merged)
    info = provenance(output=str(out_npy), sharded_from={"count": len(parts), "files": [p for p, _ in parts],
                                                          "rows": [m["rows"] for _, m in parts]})
    log.info("merged %d shards (%d rows) → %s", len(parts), n, out_npy)
    return info


__all__ = ["row_ranges", "shard_rows", "shard_attrs", "check_cover", "merge_zarr", "merge_npz_rows"]
