"""What every index operation does to a block of vectors first, the faiss import, and faiss's process
settings that results depend on (its GEMM blocks and thread count)."""

from __future__ import annotations

import contextlib

import numpy as np

#: the distances an index ranks by: ``cosine`` is L2 on L2-normalised vectors
METRICS = ("l2", "cosine")

#: faiss's BLAS blocks for exact search: query rows × vector rows per GEMM (faiss: 4096 × 1024)
BLAS_QUERY_ROWS, BLAS_VECTOR_ROWS = 2048, 8192


def faiss():
    """The faiss module, imported on first use (the Snakemake scheduler never needs it)."""
    import faiss as fs

    return fs


def prepare(vectors, metric: str = "l2", name: str = "index vectors") -> np.ndarray:
    """float32, C-contiguous, finite; L2-normalised for ``cosine`` (so L2 ranks as cosine distance)."""
    if metric not in METRICS:
        raise ValueError(f"index metric must be one of {METRICS}, got {metric!r}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise FloatingPointError(f"{name}: {bad} non-finite value(s) (NaN or inf); check the upstream "
                                 f"features/gradients")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def gpu_available() -> bool:
    """True only for a GPU build of faiss that also sees a GPU."""
    fs = faiss()
    return hasattr(fs, "StandardGpuResources") and fs.get_num_gpus() > 0


@contextlib.contextmanager
def blas_blocks(query_rows: int = BLAS_QUERY_ROWS, vector_rows: int = BLAS_VECTOR_ROWS):
    """Run faiss's exact CPU searches with GEMM blocks of ``query_rows × vector_rows`` (restored after).

    Why: with d=512 and k=50 on 2 cores, faiss's 4096 × 1024 blocks reached 67–74% of the
    machine's GEMM, 2048 × 8192 blocks 80–86% (docs/scale.md, case 9).  The block buffer
    is ``query_rows · vector_rows`` floats (64 MB here).
    """
    cv = faiss().cvar
    old = cv.distance_compute_blas_query_bs, cv.distance_compute_blas_database_bs
    cv.distance_compute_blas_query_bs, cv.distance_compute_blas_database_bs = int(query_rows), int(vector_rows)
    try:
        yield
    finally:
        cv.distance_compute_blas_query_bs, cv.distance_compute_blas_database_bs = old


@contextlib.contextmanager
def search_threads(n: int):
    """Run faiss with ``n`` OpenMP threads inside the block (and the float64 re-ranking of exact
    search, :mod:`grood.search.exact`, with as many).  faiss's own float32 distances differ in their
    last bit across thread counts; the detectors' exact scores are re-ranked in float64 and do not."""
    fs = faiss()
    before = fs.omp_get_max_threads()
    fs.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        fs.omp_set_num_threads(before)


__all__ = ["METRICS", "faiss", "prepare", "gpu_available", "blas_blocks", "search_threads"]
