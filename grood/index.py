"""faiss nearest-neighbour indexes: exact by default, IVF on request, on the GPU when faiss has one."""

from __future__ import annotations

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


def serialize(index) -> np.ndarray:
    return _faiss().serialize_index(index)


def deserialize(blob: np.ndarray):
    return _faiss().deserialize_index(np.asarray(blob, dtype=np.uint8))
