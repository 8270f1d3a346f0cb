"""Which faiss index to build: a kind (:data:`grood.search.kinds.KINDS`) and its parameters,
checked before any data is read.

In a detector's config the index is one nested mapping, ``index: {kind: ivf_flat, nlist: 1024,
nprobe: 32}`` (:meth:`IndexSpec.from_config`; left out: ``{kind: flat}``); the distance (``metric``:
``l2``, or ``cosine`` = L2 on L2-normalised vectors) is the detector's own.  Errors name the key
(:class:`IndexParamError`), e.g. ``index.nbits``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from grood.search.kinds import KINDS, MIN_POINTS_PER_CENTROID, POINTS_PER_CENTROID, cells
from grood.search.vectors import METRICS

#: every parameter an index kind may read, with its bounds (integers in [low, high])
BOUNDS = {"nlist": (1, 1 << 24), "nprobe": (1, 1 << 24), "m": (1, 4096), "nbits": (1, 16)}
#: how a config gives an index (the error for an old flat form shows it)
EXAMPLE = "index: {kind: ivf_flat, nlist: 1024, nprobe: 32}"


class IndexParamError(ValueError):
    """A bad index parameter; ``key`` is its config key below the detector (``index.nlist``, ``metric``)."""

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
            raise IndexParamError("index.kind", f"index kind must be one of {tuple(KINDS)}, got {self.kind!r}")
        if self.metric not in METRICS:
            raise IndexParamError("metric", f"index metric must be one of {METRICS}, got {self.metric!r}")
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise IndexParamError(f"index.{name}", f"index {name} must be an integer in [{low}, {high}], "
                                                       f"got {value!r}")
        if self.train_size is not None and (not isinstance(self.train_size, int) or isinstance(self.train_size, bool)
                                            or self.train_size < 1):
            raise IndexParamError("index.train_size", f"index train_size must be a positive integer or null "
                                                      f"(automatic), got {self.train_size!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise IndexParamError("index.seed", f"index seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_params(cls, params: dict | None = None, **defaults) -> "IndexSpec":
        """A spec from a flat mapping of its fields; unknown keys are an error that lists the known ones."""
        merged = {**defaults, **(params or {})}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown index parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**merged)

    @classmethod
    def from_config(cls, index: dict | None, metric: str = "l2") -> "IndexSpec":
        """A detector's ``index:`` mapping (``kind`` and the parameters that kind reads; None: flat)."""
        if index is None:
            return cls(metric=metric)
        if not isinstance(index, dict):
            hint = (f"; the old form `index: {index}` with nlist, nprobe, ... beside it is now "
                    f"`index: {{kind: {index}, nlist: ..., nprobe: ...}}`" if isinstance(index, str) else "")
            raise IndexParamError("index", f"index is one mapping such as {EXAMPLE} (kinds: {', '.join(KINDS)}), "
                                           f"got {index!r}{hint}")
        kind = index.get("kind", "flat")
        if kind not in KINDS:
            raise IndexParamError("index.kind", f"index kind must be one of {tuple(KINDS)}, got {kind!r}")
        for key in index:
            if key != "kind" and key not in KINDS[kind].params:
                readers = [k for k, spec in KINDS.items() if key in spec.params]
                fix = (f"kind {readers[0]} reads it" if readers else
                       f"{kind} reads {list(KINDS[kind].params) or 'no parameter'}")
                raise IndexParamError(f"index.{key}", f"index kind {kind!r} does not read {key!r} ({fix}); remove it")
        return cls(kind=kind, metric=metric, **{k: v for k, v in index.items() if k != "kind"})

    def to_config(self) -> dict:
        """The ``index:`` mapping of this spec: its kind and every parameter the kind reads."""
        return {"kind": self.kind, **{name: getattr(self, name) for name in KINDS[self.kind].params}}

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def exact(self) -> bool:
        return KINDS[self.kind].exact

    @property
    def needs_training(self) -> bool:
        return KINDS[self.kind].centroids(self, 1) > 0

    def check_width(self, d: int) -> None:
        if d < 1:
            raise ValueError(f"index vectors must have at least one dimension, got width {d}")

    def cells(self, n: int) -> int:
        """``nlist`` capped so every cell gets ≥ 39 training points (as faiss wants)."""
        return cells(self, n)

    def training_rows(self, n: int) -> int:
        """Rows of the seeded training sample for ``n`` indexed vectors (0 for an untrained kind)."""
        centroids = KINDS[self.kind].centroids(self, n)
        if not centroids:
            return 0
        if self.train_size is not None:
            return min(int(n), self.train_size)
        return min(int(n), POINTS_PER_CENTROID * centroids)


__all__ = ["EXAMPLE", "IndexParamError", "IndexSpec", "KINDS", "METRICS", "MIN_POINTS_PER_CENTROID",
           "POINTS_PER_CENTROID"]
