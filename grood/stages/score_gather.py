"""Stage `score_gather` (only with `shards.score` > 1): merge a part's score shards into the very
``.npy`` the unsharded `score` rule writes, byte for byte."""

from __future__ import annotations

import logging

from grood.storage.shards import merge_npz_rows

log = logging.getLogger("grood")


def score_gather_stage(shard_npzs: list, out_npy) -> dict:
    """Scores of ``shard_npzs`` (in shard order) into ``out_npy``; an ``.npy`` has no attrs, so the
    merge's provenance (which shards, which rows) goes to the job's log, and is returned."""
    info = merge_npz_rows(list(shard_npzs), out_npy)
    log.info("provenance: %s", info)
    return info
