"""Which faiss index to build, by name and parameters, checked before any data is read.

``flat``      exact ``IndexFlatL2`` (the default; GROOD's and kNN's published setting is exact).
``ivf_flat``  ``IndexIVFFlat``: ``nlist`` k-means cells, ``nprobe`` of them searched per query;
              full vectors, so its only error is a neighbour in an unsearched cell.
``ivf_pq``    ``IndexIVFPQ``: as ``ivf_flat`` but each vector stored as ``m`` codes of ``nbits``
              bits (``m`` bytes at 8 bits instead of 4·D), distances from the codes.

Quantisers (k-means cells, PQ codebooks) are trained on a seeded sample of ``train_size`` rows, so
training memory does not grow with the data.  ``cosine`` is L2 on L2-normalised vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

KINDS = ("flat", "ivf_flat", "ivf_pq")
METRICS = ("l2", "cosine")

#: faiss warns below 39 training points per centroid; we never ask for fewer
MIN_POINTS_PER_CENTROID = 39
#: training rows per centroid by default: k-means converges well with 64 (faiss caps at 256)
POINTS_PER_CENTROID = 64


class IndexParamError(ValueError):
    """A bad index parameter; ``key`` is the detector's config key for it (``index``, ``nlist``, …)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class IndexSpec:
    kind: str = "flat"
    metric: str = "l2"
    nlist: int = 1024
    nprobe: int = 4
    m: int = 16
    nbits: int = 8
    train_size: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise IndexParamError("index", f"index kind must be one of {KINDS}, got {self.kind!r}")
        if self.metric not in METRICS:
            raise IndexParamError("metric", f"index metric must be one of {METRICS}, got {self.metric!r}")
        for name, low, high in (("nlist", 1, 1 << 24), ("nprobe", 1, 1 << 24), ("m", 1, 4096),
                                ("nbits", 1, 16)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise IndexParamError(name, f"index {name} must be an integer in [{low}, {high}], got {value!r}")
        if self.train_size is not None and (not isinstance(self.train_size, int) or self.train_size < 1):
            raise IndexParamError("train_size", f"index train_size must be a positive integer or null "
                                                f"(automatic), got {self.train_size!r}")

    @classmethod
    def from_params(cls, params: dict | None = None, **defaults) -> "IndexSpec":
        """A spec from a config mapping; unknown keys are an error that lists the known ones."""
        merged = {**defaults, **(params or {})}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown index parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**merged)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    @property
    def needs_training(self) -> bool:
        return self.kind != "flat"

    def check_width(self, d: int) -> None:
        """IVF-PQ splits a vector into ``m`` equal sub-vectors: ``m`` must divide ``d``."""
        if d < 1:
            raise ValueError(f"index vectors must have at least one dimension, got width {d}")
        if self.kind == "ivf_pq" and d % self.m:
            divisors = [v for v in range(1, min(d, 256) + 1) if d % v == 0]
            raise ValueError(f"ivf_pq: m={self.m} sub-quantisers must divide the vector width {d}; "
                             f"choose m among {divisors}")

    def cells(self, n: int) -> int:
        """``nlist`` capped so every cell gets ≥ 39 training points (as faiss wants)."""
        return max(1, min(self.nlist, int(n) // MIN_POINTS_PER_CENTROID))

    def training_rows(self, n: int) -> int:
        """Rows of the seeded training sample for ``n`` indexed vectors (0 for ``flat``)."""
        if not self.needs_training:
            return 0
        if self.train_size is not None:
            return min(int(n), self.train_size)
        centroids = self.cells(n)
        if self.kind == "ivf_pq":
            centroids = max(centroids, 1 << self.nbits)
        return min(int(n), POINTS_PER_CENTROID * centroids)


__all__ = ["KINDS", "METRICS", "IndexParamError", "IndexSpec"]
