"""Indexes on disk and in memory, in faiss's own format (never pickles of Python objects)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from grood.search.kinds import KINDS
from grood.search.vectors import faiss
from grood.storage import CorruptFileError, atomic_path



#: faiss's tag of an ``IndexIDMap2``: a flat index whose identical rows are stored once keeps its ids
#: in one (:func:`grood.search.build.build_unique_index`)
ID_MAP_TAG = b"IxM2"
#: where the wrapped index's tag sits in an ``IndexIDMap2``'s bytes: after its own tag and faiss's
#: index header (d int32, ntotal and two unused int64, is_trained bool, metric int32)
_WRAPPED_TAG_AT = 4 + 4 + 3 * 8 + 1 + 4


def index_tags() -> dict[bytes, str]:
    """faiss's type tags (the first 4 bytes of a serialised index) of the kinds grood builds."""
    return {kind.faiss_tag: kind.faiss_type for kind in KINDS.values()}


def serialize(index) -> np.ndarray:
    """The index as faiss's byte format (a uint8 array), e.g. to embed in another file."""
    return faiss().serialize_index(index)


def deserialize(blob: np.ndarray):
    """An index from :func:`serialize`'s bytes; only the index types grood builds are read (and an
    ``IndexIDMap2`` around the flat kind), so bytes naming another faiss type are refused before
    faiss parses them."""
    blob = np.asarray(blob)
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ValueError(f"a serialised faiss index is a 1-D uint8 array, got {blob.dtype} {blob.shape}")
    tag, tags = blob[:4].tobytes(), index_tags()
    if tag == ID_MAP_TAG:
        tag = blob[_WRAPPED_TAG_AT : _WRAPPED_TAG_AT + 4].tobytes()
        tags = {KINDS["flat"].faiss_tag: KINDS["flat"].faiss_type}
    if tag not in tags:
        raise ValueError(f"serialised faiss index of type tag {tag!r}: not one grood builds "
                         f"({sorted(index_tags().values())}, the flat one also with its ids)")
    try:
        return faiss().deserialize_index(blob)
    except RuntimeError as e:  # truncated or corrupt bytes
        raise ValueError(f"the serialised faiss index cannot be read: {str(e).splitlines()[-1]}") from None


def write_index(index, path: str | os.PathLike) -> None:
    """``faiss.write_index`` to a temporary beside ``path``, then renamed into place."""
    with atomic_path(path) as tmp:
        faiss().write_index(index, str(tmp))


def read_index(path: str | os.PathLike, mmap: bool = False):
    """An index written by :func:`write_index`; ``mmap=True`` maps an IVF index's lists from disk
    instead of reading them (for an index larger than the job's memory)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"faiss index {path} does not exist; re-run the rule that builds it")
    fs = faiss()
    flags = fs.IO_FLAG_MMAP | fs.IO_FLAG_READ_ONLY if mmap else 0
    try:
        return fs.read_index(str(path), flags)
    except RuntimeError as e:
        raise CorruptFileError(f"{path} is not a readable faiss index ({e}); delete it and re-run the rule "
                               f"that builds it") from e


__all__ = ["ID_MAP_TAG", "index_tags", "serialize", "deserialize", "write_index", "read_index"]
