"""Search an index with queries streamed in batches, on the GPU when a GPU build of faiss sees one.

Queries come from any row array (numpy, a Zarr array): one batch of ``batch_size`` rows is read,
prepared and searched at a time, so scoring a 50k-image OOD set never holds its gradients whole.

Exact search on the CPU is a float32 GEMM (queries × vectorsᵀ) in blocks plus a top-k pass over
each block.  faiss's default blocks (4096 queries × 1024 vectors) make the GEMM narrow and the
top-k bookkeeping frequent; :func:`blas_blocks` widens them (measured by ``python -m benchmarks.bench``
case 9 against the machine's own GEMM on the same shapes).

IVF-Flat search on the CPU runs cell by cell as GEMMs (:mod:`grood.search.ivf_blocked`): faiss's
own IVF search is bound by memory traffic (one query at a time), which made it only ≈ 3× faster
than exact search at 1M × 512 while visiting 3% of the vectors.

The detectors' exact (``flat``) scores come from :func:`exact_kth_distance`: faiss — on all the
job's threads, or on a GPU — only proposes candidates, which are ranked by their float64 distance
(:mod:`grood.search.exact`), so the scores are the same bits on 1 or N threads and on CPU or GPU.
"""

from __future__ import annotations

import logging

import numpy as np

from grood.storage.chunks import iter_blocks, row_width
from grood.search.kinds import kind_of
from grood.search.vectors import blas_blocks, faiss, gpu_available, prepare, search_threads

log = logging.getLogger(__name__)

#: query rows per faiss call: large enough for BLAS to run at full speed, small enough for memory
QUERY_BATCH = 16384
#: the largest k faiss's GPU search returns (its k-selection kernels; faiss ≥ 1.7.3)
GPU_MAX_K = 2048

_GPU_RESOURCES = []  # one StandardGpuResources per process (it owns scratch memory); created lazily


def wants_gpu(use_gpu: bool | str) -> bool:
    """Resolve ``use_gpu`` (``"auto"``, True, False); True without a GPU build of faiss is an error."""
    if use_gpu not in ("auto", True, False):
        raise ValueError(f"use_gpu must be 'auto', true or false, got {use_gpu!r}")
    if use_gpu == "auto":
        return gpu_available()
    if use_gpu and not gpu_available():
        raise RuntimeError("a faiss GPU search was asked for (config search.gpu: true) but this faiss has no "
                           "GPU build or sees no GPU (faiss.get_num_gpus() == 0); install faiss-gpu on the GPU "
                           "nodes (pip install -e '.[gpu]', docs/cluster.md), give the job a GPU, or set "
                           "search.gpu: false")
    return bool(use_gpu)


def on_device(index, use_gpu: bool | str = "auto"):
    """``index`` itself, or its GPU copy when :func:`wants_gpu`; a GPU copy that faiss refuses
    (e.g. an IVF-PQ layout its kernels lack) falls back to the CPU index with a warning."""
    if not wants_gpu(use_gpu):
        return index
    fs = faiss()
    try:
        if not _GPU_RESOURCES:
            _GPU_RESOURCES.append(fs.StandardGpuResources())
        options = fs.GpuClonerOptions()
        options.useFloat16 = False  # exact float32 distances, as on the CPU
        gpu = fs.index_cpu_to_gpu(_GPU_RESOURCES[0], 0, index, options)
    except Exception as e:  # faiss raises RuntimeError for unsupported GPU layouts
        if use_gpu is True:
            raise
        log.warning("faiss could not copy the %s index to the GPU (%s); searching on the CPU",
                    type(index).__name__, e)
        return index
    log.info("searching on the GPU")
    return gpu


def _check(index, queries, k: int, rows: int | None = None) -> int:
    """The number of queries, once ``k`` fits the index's ``rows`` (default: its stored vectors) and
    the queries its width."""
    rows = index.ntotal if rows is None else int(rows)
    if not 1 <= int(k) <= rows:
        raise ValueError(f"k must lie in [1, {rows}] (the index size), got {k}")
    if len(queries.shape) != 2 or row_width(queries) != index.d:
        raise ValueError(f"queries of shape {tuple(queries.shape)} do not match the index's vector width "
                         f"{index.d}; were they computed with the same model and settings?")
    return int(queries.shape[0])


def searcher_of(index, use_gpu: bool | str = "auto"):
    """``(prepared queries, k) -> (distances, ids)`` for ``index``: faiss's GPU copy when
    :func:`wants_gpu`; on the CPU the kind's own search where it has one (IVF-Flat: cell by cell as
    GEMMs, :data:`grood.search.kinds.KINDS`), else faiss's."""
    searcher = on_device(index, use_gpu)
    if searcher is not index:
        return searcher.search
    kind = kind_of(index)
    ours = kind.cpu_search(index) if kind is not None and kind.cpu_search is not None else None
    return ours or index.search


def gpu_proposer(index, use_gpu: bool | str = "auto"):
    """``(q, kk) -> (float32 distances, ids)`` from the GPU copy of a flat ``index`` (bare or in an
    ``IndexIDMap2``: its ids are mapped back) when :func:`wants_gpu`; None without a GPU.  The
    proposer returns None beyond :data:`GPU_MAX_K` (the CPU index proposes then).  For
    :func:`grood.search.exact.exact_topk`."""
    fs = faiss()
    inner, ids = index, None
    if isinstance(index, (fs.IndexIDMap, fs.IndexIDMap2)):
        inner, ids = fs.downcast_index(index.index), fs.vector_to_array(index.id_map).astype(np.int64)
    device = on_device(inner, use_gpu)
    if device is inner:
        return None

    def propose(q, kk):
        if kk > GPU_MAX_K:
            return None
        dist, pos = device.search(q, kk)
        return dist, (pos if ids is None else np.where(pos >= 0, ids[np.clip(pos, 0, None)], -1))

    return propose


def exact_kth_distance(index, queries, k: int, metric: str = "l2", use_gpu: bool | str = "auto",
                       batch_size: int = 4096, name: str = "queries", duplicates=None,
                       stats: dict | None = None) -> np.ndarray:
    """The canonical squared distance (float64) from each query to its k-th nearest row of a flat
    ``index`` (:func:`grood.search.exact.exact_search`; ``duplicates``: the rows it stores once, from
    :func:`grood.search.build.build_unique_index`): the same bits whatever the thread count and
    whether faiss proposed the candidates on a GPU."""
    from grood.search.duplicates import rows_of
    from grood.search.exact import exact_search

    _check(index, queries, k, rows_of(index.ntotal, duplicates))
    dist, _ = exact_search(index, queries, int(k), metric, batch_size, name, propose=gpu_proposer(index, use_gpu),
                           duplicates=duplicates, stats=stats)
    return dist[:, int(k) - 1]


def _batches(index, queries, k: int, metric: str, use_gpu: bool | str, batch_size: int, name: str):
    """``(first row, distances, ids)`` of each batch of ``batch_size`` queries, searched in ``index``."""
    run = searcher_of(index, use_gpu)
    with blas_blocks():
        for start, block in iter_blocks(queries, batch_size):
            yield start, *run(prepare(block, metric, name), k)


def search(index, queries, k: int, metric: str = "l2", use_gpu: bool | str = "auto",
           batch_size: int = QUERY_BATCH, name: str = "queries") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest indexed vectors of every query: squared L2 distances (float32, ascending)
    and ids (int64), both (N, k)."""
    n = _check(index, queries, k)
    dist = np.empty((n, k), dtype=np.float32)
    ids = np.empty((n, k), dtype=np.int64)
    for start, d, i in _batches(index, queries, k, metric, use_gpu, batch_size, name):
        dist[start : start + len(d)], ids[start : start + len(d)] = d, i
    return dist, ids


def kth_distance(index, queries, k: int, metric: str = "l2", use_gpu: bool | str = "auto",
                 batch_size: int = QUERY_BATCH, name: str = "queries") -> np.ndarray:
    """Squared L2 distance from each query to its k-th nearest indexed vector (float32, N)."""
    n = _check(index, queries, k)
    out = np.empty(n, dtype=np.float32)
    for start, d, _ in _batches(index, queries, k, metric, use_gpu, batch_size, name):
        out[start : start + len(d)] = d[:, k - 1]
    return out


__all__ = ["GPU_MAX_K", "QUERY_BATCH", "blas_blocks", "search_threads", "wants_gpu", "on_device", "searcher_of",
           "search", "kth_distance", "gpu_proposer", "exact_kth_distance"]

