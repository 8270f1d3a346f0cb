"""Stage `features_gather` (only with `shards.features` > 1): merge a part's feature shards into the
very store the unsharded `features` rule writes, byte for byte, and the shards' partial class sums
of the early activation into the early prototypes' store (:mod:`grood.method.early_store`)."""

from __future__ import annotations

from grood.storage.shards import merge_zarr


def features_gather_stage(shard_stores: list, out_zarr, chunk_rows: int, early_shards: list | None = None,
                          early_out=None) -> None:
    """Rows of ``shard_stores`` (in shard order) into ``out_zarr``, chunked like the unsharded store;
    with ``early_out``, the sums of ``early_shards`` (in shard order) into the early store."""
    from grood.method.early_store import merge_partial_sums

    merge_zarr(list(shard_stores), out_zarr, chunk_rows)
    if early_out is not None:
        merge_partial_sums(list(early_shards or []), early_out)
