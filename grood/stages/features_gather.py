"""Stage `features_gather` (only with `shards.features` > 1): merge a part's feature shards into the
very store the unsharded `features` rule writes, byte for byte."""

from __future__ import annotations

from grood.storage.shards import merge_zarr


def features_gather_stage(shard_stores: list, out_zarr, chunk_rows: int) -> None:
    """Rows of ``shard_stores`` (in shard order) into ``out_zarr``, chunked like the unsharded store."""
    merge_zarr(list(shard_stores), out_zarr, chunk_rows)
