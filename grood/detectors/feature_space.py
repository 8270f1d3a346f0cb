"""Feature-space baselines (methods.md §5): Mahalanobis (Lee et al. 2018) and kNN (Sun et al. 2022).

Both fit on the ID training set's penultimate features ``h`` and score any set's features.
"""

from __future__ import annotations

import logging

import numpy as np

from grood import index as faiss_index
from grood.detectors.base import Detector, check_finite

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

    def fit(self, features: np.ndarray, labels: np.ndarray, **_) -> "Mahalanobis":
        from grood.prototypes import class_means

        h = np.asarray(check_finite("Mahalanobis training features", features), dtype=np.float64)
        y = np.asarray(labels)
        known = y >= 0  # -1: a training label outside the model's classes
        h, y = h[known], y[known]
        num_classes = int(y.max()) + 1
        self.means_ = class_means(h, y, num_classes)
        centred = h - self.means_[y]
        self.covariance_ = centred.T @ centred / len(h)
        lam, vec = np.linalg.eigh(self.covariance_)
        keep = lam > self.rcond * lam.max()
        # Σ⁺ = W Wᵀ with W = V_keep / sqrt(λ_keep): distances become plain L2 after projecting on W
        self.whiten_ = vec[:, keep] / np.sqrt(lam[keep])
        self.rank_ = int(keep.sum())
        log.info("Mahalanobis: %d classes, covariance rank %d of %d", num_classes, self.rank_, h.shape[1])
        return self

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

    def score(self, features: np.ndarray, **_) -> np.ndarray:
        return -self.distances(features).min(1)


class KNN(Detector):
    """Sun et al. 2022: ``S(x) = −‖ĥ(x) − ĥ_(k)‖²``, the squared L2 distance between L2-normalised
    features and the k-th nearest normalised ID training feature (exact ``IndexFlatL2``).

    Squared, as faiss returns and the authors' code uses (``-D[:, -1]``); the plain distance ranks
    the same.  Fitted on all ID training features (labels are not used).
    """

    requires = ("features",)
    fit_requires = ("features",)
    state_indexes = ("index_",)

    def __init__(self, k: int = 50, index: str = "flat", nlist: int = 1024, nprobe: int = 4):
        if int(k) < 1:
            raise ValueError(f"knn k must be ≥ 1, got {k}")
        if index not in faiss_index.KINDS:
            raise ValueError(f"knn index must be one of {faiss_index.KINDS}, got {index!r}")
        self.k, self.index = int(k), index
        self.nlist, self.nprobe = int(nlist), int(nprobe)

    def fit(self, features: np.ndarray, **_) -> "KNN":
        h = check_finite("kNN training features", features)
        if self.k > len(h):
            raise ValueError(f"knn k={self.k} exceeds the {len(h)} training features")
        # metric="cosine" L2-normalises before an L2 index: exactly Sun et al.'s normalised features
        self.index_ = faiss_index.build_index(h, self.index, "cosine", self.nlist, self.nprobe)
        return self

    def score(self, features: np.ndarray, **_) -> np.ndarray:
        d = faiss_index.kth_distance(self.index_, check_finite("kNN features", features), self.k, "cosine")
        return -d.astype(np.float64)
