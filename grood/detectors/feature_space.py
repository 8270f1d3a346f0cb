"""Feature-space baselines (docs/methods.md §5): Mahalanobis (Lee et al. 2018) and kNN (Sun et al. 2022).

Both fit on the ID training set's penultimate features ``h`` and score any set's features.
"""

from __future__ import annotations

import logging

import numpy as np

from grood.storage.chunks import block_rows, check_rows, iter_blocks
from grood.detectors.base import Detector, IndexedDetector, check_finite

log = logging.getLogger(__name__)


class Mahalanobis(Detector):
    """``S(x) = −min_c (h − μ_c)ᵀ Σ⁺ (h − μ_c)``: class means, one shared (tied) covariance.

    ``Σ`` is the maximum-likelihood covariance of the class-centred training features (as
    scikit-learn's ``EmpiricalCovariance`` fitted on ``h − μ_y``, Lee et al.'s code) and ``Σ⁺`` its
    **pseudo-inverse** (eigenvalues below ``rcond · λ_max`` dropped, as ``scipy.linalg.pinvh``): ReLU
    features often have dead, constant dimensions, which make ``Σ`` singular.  The distance is the
    squared Mahalanobis distance (Lee et al.); the square root would rank the same.
    """

    requires = ("features",)
    fit_requires = ("features", "labels")
    state_arrays = ("means_", "covariance_", "whiten_", "rank_")

    def __init__(self, rcond: float = 1e-10):
        if not 0.0 <= rcond < 1.0:
            raise ValueError(f"mahalanobis rcond must lie in [0, 1), got {rcond}")
        self.rcond = float(rcond)

    def fit(self, features, labels, **_) -> "Mahalanobis":
        """Two passes over ``features`` (numpy or Zarr, block by block, float64): class means, then
        the class-centred scatter — the in-memory formulas, summed block by block."""
        n = int(features.shape[0])
        check_rows("Mahalanobis training set", n, labels=labels)
        y = integer_labels(labels, "Mahalanobis training labels")
        known = y >= 0  # -1: a training label outside the model's classes
        if not known.any():
            raise ValueError("Mahalanobis: no training sample has a known class label")
        num_classes = int(y[known].max()) + 1
        counts = np.bincount(y[known], minlength=num_classes)
        if (counts == 0).any():
            raise ValueError(f"no training sample for class(es) {np.flatnonzero(counts == 0).tolist()}")
        d = int(features.shape[1])
        sums = np.zeros((num_classes, d))
        for start, h, yb, kb in self._blocks(features, y, known):
            np.add.at(sums, yb[kb], h[kb])  # row by row in order, as grood.method.prototypes.class_means
        self.means_ = sums / counts[:, None]
        scatter = np.zeros((d, d))
        for start, h, yb, kb in self._blocks(features, y, known):
            centred = h[kb] - self.means_[yb[kb]]
            scatter += centred.T @ centred
        self.covariance_ = scatter / int(known.sum())
        lam, vec = np.linalg.eigh(self.covariance_)
        keep = lam > self.rcond * lam.max()
        # Σ⁺ = W Wᵀ with W = V_keep / sqrt(λ_keep): distances become plain L2 after projecting on W
        self.whiten_ = vec[:, keep] / np.sqrt(lam[keep])
        self.rank_ = int(keep.sum())
        log.info("Mahalanobis: %d classes, covariance rank %d of %d", num_classes, self.rank_, d)
        return self

    @staticmethod
    def _blocks(features, y, known):
        for start, h in iter_blocks(features, block_rows(features.shape[1], 8)):
            h = np.asarray(check_finite("Mahalanobis training features", h), dtype=np.float64)
            sl = slice(start, start + len(h))
            yield start, h, y[sl], known[sl]

    @property
    def precision_(self) -> np.ndarray:
        """``Σ⁺`` (for inspection and tests)."""
        return self.whiten_ @ self.whiten_.T

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to every class mean, (N, C)."""
        u = np.asarray(check_finite("Mahalanobis features", features), dtype=np.float64) @ self.whiten_
        m = self.means_ @ self.whiten_
        sq = (u**2).sum(1)[:, None] - 2.0 * u @ m.T + (m**2).sum(1)[None]
        return np.maximum(sq, 0.0)

    def score(self, features, **_) -> np.ndarray:
        out = np.empty(int(features.shape[0]))
        for start, h in iter_blocks(features, block_rows(features.shape[1], 8)):
            out[start : start + len(h)] = -self.distances(h).min(1)
        return out


def integer_labels(labels, name: str) -> np.ndarray:
    """Class labels as int64 (read whole: one number per row); non-integral values are an error."""
    y = np.asarray(labels[:])
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise ValueError(f"{name} must be integers (class indices, -1 for unknown), got {y.dtype} values")
        y = y.astype(np.int64)
    return y


class KNN(IndexedDetector):
    """Sun et al. 2022: ``S(x) = −‖ĥ(x) − ĥ_(k)‖²``, the squared L2 distance between L2-normalised
    features and the k-th nearest normalised ID training feature (exact ``IndexFlatL2``).

    Squared, as faiss returns and the authors' code uses (``-D[:, -1]``); the plain distance ranks
    the same.  Fitted on all ID training features (labels are not used).
    """

    requires = ("features",)
    fit_requires = ("features",)

    #: metric="cosine" L2-normalises before an L2 index: exactly Sun et al.'s normalised features
    index_metric = "cosine"
    #: OpenOOD v1.5's sweep of k (its K_list)
    sweep_grid = {"k": [50, 100, 200, 500, 1000]}

    def __init__(self, k: int = 50, index: dict | None = None):
        if int(k) < 1:
            raise ValueError(f"knn k must be ≥ 1, got {k}")
        self.k = int(k)
        self._set_index(index, self.index_metric)  # `index: {kind: ..., nlist: ...}`, checked now

    def indexed_rows(self, features, **_):
        """``(vectors, mask)``: every training feature is indexed (no mask)."""
        return features, None

    def fit(self, features, with_index: bool = True, **_) -> "KNN":
        """Streams ``features`` (numpy or Zarr) into the index block by block; ``with_index=False``
        only checks them (``shards.index`` > 1: shard jobs index them)."""
        n = int(features.shape[0])
        if self.k > n:
            raise ValueError(f"knn k={self.k} exceeds the {n} training features")
        if not with_index:
            return self
        self.build_index(features, name="kNN training features")
        return self

    def score(self, features, **_) -> np.ndarray:
        return self.score_from_kth_distance(self.kth_distance(features, "kNN features"))
