"""faiss nearest-neighbour indexes: exact by default, IVF on request, on the GPU when faiss has one."""

from __future__ import annotations

import contextlib
import logging

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf")
METRICS = ("l2", "cosine")


def _faiss():
    import faiss

    return faiss


def gpu_available() -> bool:
    """True only for a GPU build of faiss that also sees a GPU."""
    faiss = _faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """float32, C-contiguous; L2-normalised for ``cosine`` (so L2 ranks as cosine distance)."""
    if metric not in METRICS:
        raise ValueError(f"index metric must be one of {METRICS}, got {metric!r}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"index vectors must be 2-D (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise FloatingPointError("index vectors contain NaN or inf; check the upstream features/gradients")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def build_index(vectors: np.ndarray, kind: str = "flat", metric: str = "l2", nlist: int = 1024,
                nprobe: int = 4, seed: int = 0):
    """A CPU faiss index over ``vectors`` (moved to the GPU only at search time)."""
    faiss = _faiss()
    x = prepare(vectors, metric)
    d = x.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatL2(d)
    elif kind == "ivf":
        nlist = max(1, min(nlist, len(x) // 39))  # faiss wants ≥ 39 points per centroid
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        index.cp.seed = seed
        index.train(x)
        index.nprobe = nprobe
    else:
        raise ValueError(f"index kind must be one of {KINDS}, got {kind!r}")
    index.add(x)
    return index


def kth_distance(index, queries: np.ndarray, k: int, metric: str = "l2", use_gpu: bool | str = "auto",
                 batch_size: int = 16384) -> np.ndarray:
    """Squared L2 distance from each query to its k-th nearest indexed vector."""
    faiss = _faiss()
    if k < 1 or k > index.ntotal:
        raise ValueError(f"k must lie in [1, {index.ntotal}] (the index size), got {k}")
    searcher = index
    if (use_gpu == "auto" and gpu_available()) or use_gpu is True:
        res = faiss.StandardGpuResources()
        searcher = faiss.index_cpu_to_gpu(res, 0, index)
        log.info("searching on the GPU")
    q = prepare(queries, metric)
    out = np.empty(len(q), dtype=np.float32)
    for start in range(0, len(q), batch_size):
        dist, _ = searcher.search(q[start : start + batch_size], k)
        out[start : start + batch_size] = dist[:, k - 1]
    return out


#: faiss's type tags (the first 4 bytes of a serialised index) of the indexes build_index makes
INDEX_TAGS = {b"IxF2": "IndexFlatL2", b"IwFl": "IndexIVFFlat"}


@contextlib.contextmanager
def search_threads(n: int):
    """Run faiss with ``n`` OpenMP threads inside the block. A flat L2 search sums in an order that
    depends on the thread count, so distances differ in their last float32 bit across counts; the
    pipeline's score jobs run one thread (``threads: 1``), and reproducing them needs the same."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def serialize(index) -> np.ndarray:
    """The index in faiss's own format, as a uint8 array (storable in an ``.npz``)."""
    return _faiss().serialize_index(index)


def deserialize(blob: np.ndarray):
    """An index from :func:`serialize`'s bytes; only the index types :func:`build_index` makes are
    read, so a file naming another faiss type is refused before faiss parses it."""
    blob = np.asarray(blob)
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ValueError(f"a serialised faiss index is a 1-D uint8 array, got {blob.dtype} {blob.shape}")
    tag = blob[:4].tobytes()
    if tag not in INDEX_TAGS:
        raise ValueError(f"serialised faiss index of type tag {tag!r}: not one grood builds "
                         f"({sorted(INDEX_TAGS.values())})")
    try:
        return _faiss().deserialize_index(blob)
    except RuntimeError as e:  # truncated or corrupt bytes
        raise ValueError(f"the serialised faiss index cannot be read: {str(e).splitlines()[-1]}") from None
