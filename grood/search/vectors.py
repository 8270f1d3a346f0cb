"""What every index operation does to a block of vectors first, and the faiss import."""

from __future__ import annotations

import numpy as np

from grood.search.spec import METRICS


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


__all__ = ["faiss", "prepare", "gpu_available"]
