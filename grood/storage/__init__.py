"""Outputs on disk: atomic, provenance-carrying files (:mod:`~grood.storage.files`), row arrays read
block by block (:mod:`~grood.storage.chunks`) and row shards split and merged exactly
(:mod:`~grood.storage.shards`).  The file writers and readers are re-exported here."""

from grood.storage.files import (CorruptFileError, ZarrWriter, atomic_path, config_hash, load_npz, provenance,
                                 read_zarr, save_json, save_npz, sha256_file, write_zarr)

__all__ = ["CorruptFileError", "ZarrWriter", "atomic_path", "config_hash", "load_npz", "provenance", "read_zarr",
           "save_json", "save_npz", "sha256_file", "write_zarr"]
