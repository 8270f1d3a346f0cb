"""faiss nearest-neighbour indexes for the detectors: exact by default, IVF-Flat / IVF-PQ on request.

The detectors' entry point (``from grood import index``); the machinery — streamed builds, batched
and GPU queries, canonical exact search, shards and their exact merge, recall and AUROC cost of an
approximate index, faiss's file format — lives in :mod:`grood.search`, re-exported here.
"""

from __future__ import annotations

from grood.search.build import build_index as build_from_rows
from grood.search.io import deserialize, read_index, serialize, write_index
from grood.search.query import kth_distance, on_device, search, search_threads
from grood.search.spec import KINDS, METRICS, IndexSpec
from grood.search.vectors import gpu_available, prepare


def build_index(vectors, kind: str = "flat", metric: str = "l2", nlist: int = 1024, nprobe: int = 4,
                seed: int = 0, m: int = 16, nbits: int = 8, train_size: int | None = None, mask=None):
    """A CPU faiss index over the rows of ``vectors`` (numpy or Zarr; moved to the GPU only to search).

    The detectors' entry point; :func:`grood.search.build.build_index` takes an :class:`IndexSpec`.
    """
    spec = IndexSpec(kind=kind, metric=metric, nlist=int(nlist), nprobe=int(nprobe), m=int(m),
                     nbits=int(nbits), train_size=train_size, seed=int(seed))
    return build_from_rows(vectors, spec, mask)


__all__ = ["KINDS", "METRICS", "IndexSpec", "build_index", "build_from_rows", "search", "kth_distance",
           "on_device", "search_threads", "gpu_available", "prepare", "serialize", "deserialize", "write_index", "read_index"]
