"""Feature- and logit-space baselines (docs/baselines.md §5–9): ViM, GEN, KL-Matching,
relative Mahalanobis (RMDS) and SHE.  Each fits what depends on the ID training set once (ViM's
principal space and α, KLM's class templates, RMDS's class and background Gaussians, SHE's class
patterns) into numeric state arrays; higher scores = more in-distribution.
"""

from __future__ import annotations

import logging

import numpy as np

from grood.detectors.base import Detector, check_finite, logsumexp, softmax
from grood.detectors.feature_space import Mahalanobis, integer_labels
from grood.detectors.head import blocks, check_head

log = logging.getLogger(__name__)


def _rows(name: str, array) -> np.ndarray:
    return np.asarray(check_finite(name, np.asarray(array)), dtype=np.float64)


def vim_auto_dim(width: int) -> int:
    """ViM's principal dimension for ``width``-dimensional features when ``dim`` is 0: the authors'
    1000 (D ≥ 2048) and 512 (D ≥ 768), else ``D // 2`` (OpenOOD's 256 for ResNet-18's 512; 42 for
    the LeNet's 84)."""
    return 1000 if width >= 2048 else 512 if width >= 768 else width // 2


class ViM(Detector):
    """ViM (Wang et al., CVPR 2022): ``S = logsumexp(z) − α‖P⊥(h − u)‖``.

    ``u = −W⁺b`` (the head's origin), ``P⊥`` projects on the eigenvectors of the ``D − dim``
    smallest eigenvalues of ``E[(h − u)(h − u)ᵀ]`` over the ID training set, and
    ``α = mean max z / mean ‖P⊥(h − u)‖`` on that set.  ``dim`` 0: :func:`vim_auto_dim`.
    ``variance`` > 0 (our option, overrides ``dim``): the smallest ``dim`` whose principal space
    holds that share of the trace — for small networks whose ID features fill more than ``D/2``
    dimensions (docs/baselines.md §5).
    """

    requires = ("features", "logits")
    fit_requires = ("features", "logits", "head_weight", "head_bias")
    state_arrays = ("origin_", "null_basis_", "alpha_", "dim_")
    #: the papers' values (OpenOOD: 256, 1000; ViM: 512, 1000) and ones below the LeNet's D = 84;
    #: values ≥ D are refused by fit (a tuning protocol skips them); or the variance criterion
    sweep_grid = {"dim": [16, 32, 42, 56, 64, 70, 76, 80, 256, 512, 1000], "variance": [0.999, 0.9999, 0.99999, 0.999999]}

    def __init__(self, dim: int = 0, variance: float = 0.0):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise ValueError(f"vim dim: must be an integer ≥ 0 (the principal subspace's dimension, 0 = "
                             f"the authors' rule for the feature width), got {dim!r}")
        if isinstance(variance, bool) or not isinstance(variance, (int, float)) or not 0 <= variance < 1:
            raise ValueError(f"vim variance: must be a number in [0, 1) (the share of the ID second moment "
                             f"the principal space keeps, e.g. 0.99999; 0 = use dim), got {variance!r}")
        self.dim, self.variance = dim, float(variance)

    def fit(self, features, logits, head_weight, head_bias, **_) -> "ViM":
        w, b = check_head("ViM", head_weight, head_bias, features, logits)
        width = w.shape[1]
        self.origin_ = -np.linalg.pinv(w) @ b
        second, n = np.zeros((width, width)), 0
        for _, h in blocks(features, "ViM training features"):
            c = h - self.origin_
            second += c.T @ c
            n += len(h)
        if n == 0:
            raise ValueError("ViM: no training features")
        lam, vec = np.linalg.eigh(second / n)  # ascending eigenvalues
        if self.variance:
            share = np.cumsum(np.maximum(lam[::-1], 0.0)) / max(lam.sum(), np.finfo(float).tiny)
            dim = min(int(np.searchsorted(share, self.variance) + 1), width - 1)
        else:
            dim = self.dim or vim_auto_dim(width)
        if not 1 <= dim < width:
            raise ValueError(f"vim dim: {dim} leaves no residual space in {width}-dimensional features; "
                             f"choose 1 ≤ dim < {width} (or 0 for {vim_auto_dim(width)})")
        self.null_basis_ = vec[:, : width - dim]
        self.dim_ = int(dim)
        residual, top_logit = 0.0, 0.0
        for start, h in blocks(features, "ViM training features"):
            residual += self.residual_norm(h).sum()
            top_logit += _rows("ViM training logits", logits[start : start + len(h)]).max(1).sum()
        self.alpha_ = float(top_logit / residual)
        log.info("ViM: dim %d of %d, alpha %.4g", dim, width, self.alpha_)
        return self

    def residual_norm(self, features) -> np.ndarray:
        """``‖P⊥(h − u)‖`` per row (the virtual logit before α)."""
        return np.linalg.norm((_rows("ViM features", features) - self.origin_) @ self.null_basis_, axis=1)

    def score(self, features, logits, **_) -> np.ndarray:
        z = _rows("ViM logits", logits)
        return logsumexp(z) - self.alpha_ * self.residual_norm(features)


class GEN(Detector):
    """GEN (Liu, Lochman & Zach, CVPR 2023): ``S = −Σ_{top M} p_j^γ (1 − p_j)^γ`` over the ``top_m``
    largest softmax probabilities (all of them when ``top_m`` ≥ C)."""

    sweep_grid = {"gamma": [0.01, 0.1, 0.5, 1, 2, 5, 10], "top_m": [10, 50, 100, 200, 500, 1000]}

    def __init__(self, gamma: float = 0.1, top_m: int = 100):
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
            raise ValueError(f"gen gamma: must be a number > 0 (the generalised entropy's exponent, "
                             f"0.1 in the paper), got {gamma!r}")
        if isinstance(top_m, bool) or not isinstance(top_m, int) or top_m < 1:
            raise ValueError(f"gen top_m: must be an integer ≥ 1 (how many of the largest probabilities "
                             f"enter, the paper's M), got {top_m!r}")
        self.gamma, self.top_m = float(gamma), int(top_m)

    def score(self, logits, **_) -> np.ndarray:
        p = softmax(check_finite("GEN logits", np.asarray(logits)))
        top = -np.sort(-p, axis=1)[:, : self.top_m]
        return -(top**self.gamma * (1.0 - top) ** self.gamma).sum(1)


class KLMatching(Detector):
    """KL-Matching (Hendrycks et al., ICML 2022): ``S = −min_k KL(p ‖ d_k)``, ``d_k`` the mean softmax
    of the ID training samples the network predicts as ``k`` (labels unused; classes never predicted
    get no template)."""

    fit_requires = ("logits",)
    state_arrays = ("templates_", "template_classes_")

    def fit(self, logits, **_) -> "KLMatching":
        c = int(logits.shape[1])
        sums, counts = np.zeros((c, c)), np.zeros(c, dtype=np.int64)
        for _, z in blocks(logits, "KLM training logits"):
            p = softmax(z)
            pred = p.argmax(1)
            np.add.at(sums, pred, p)
            counts += np.bincount(pred, minlength=c)
        seen = counts > 0
        if not seen.any():
            raise ValueError("KL-Matching: no training logits to build templates from")
        self.template_classes_ = np.flatnonzero(seen)
        self.templates_ = sums[seen] / counts[seen, None]
        if not seen.all():
            log.warning("KL-Matching: classes %s are never predicted on the training set: no template",
                        np.flatnonzero(~seen).tolist())
        return self

    def divergences(self, logits) -> np.ndarray:
        """``KL(p ‖ d_k)`` for every row and template, (N, K); ``0 log 0 = 0``."""
        p = softmax(check_finite("KLM logits", np.asarray(logits)))
        log_p = np.log(np.where(p > 0, p, 1.0))
        log_d = np.log(np.maximum(self.templates_, np.finfo(np.float64).tiny))
        return (p * log_p).sum(1, keepdims=True) - p @ log_d.T

    def score(self, logits, **_) -> np.ndarray:
        return -self.divergences(logits).min(1)


class RMDS(Mahalanobis):
    """Relative Mahalanobis (Ren et al., 2021): ``S = −min_k (MD_k(h) − MD_0(h))``, ``MD_k`` as
    :class:`Mahalanobis` (class means, shared covariance) and ``MD_0`` the squared distance under one
    Gaussian fitted to all known-label training features; pseudo-inverses for both."""

    state_arrays = (*Mahalanobis.state_arrays, "background_mean_", "background_whiten_", "background_rank_")

    def fit(self, features, labels, **_) -> "RMDS":
        super().fit(features, labels)
        y = integer_labels(labels, "RMDS training labels")
        known = y >= 0
        d = self.means_.shape[1]
        total, n = np.zeros(d), 0
        for start, h, yb, kb in self._blocks(features, y, known):
            total += h[kb].sum(0)
            n += int(kb.sum())
        self.background_mean_ = total / n
        scatter = np.zeros((d, d))
        for start, h, yb, kb in self._blocks(features, y, known):
            c = h[kb] - self.background_mean_
            scatter += c.T @ c
        lam, vec = np.linalg.eigh(scatter / n)
        keep = lam > self.rcond * lam.max()
        self.background_whiten_ = vec[:, keep] / np.sqrt(lam[keep])
        self.background_rank_ = int(keep.sum())
        return self

    def background_distance(self, features) -> np.ndarray:
        u = (_rows("RMDS features", features) - self.background_mean_) @ self.background_whiten_
        return (u**2).sum(1)

    def score(self, features, **_) -> np.ndarray:
        h = _rows("RMDS features", features)
        return self.background_distance(h) - self.distances(h).min(1)


class SHE(Detector):
    """SHE (Zhang et al., ICLR 2023): ``S = ⟨h, S_ŷ⟩``, ``ŷ = argmax z`` and ``S_c`` the mean feature of
    the ID training samples of class ``c`` that the network classifies correctly (of all its training
    samples when none is — our fallback for barely trained networks, logged)."""

    requires = ("features", "logits")
    fit_requires = ("features", "logits", "labels")
    state_arrays = ("patterns_",)

    def fit(self, features, logits, labels, **_) -> "SHE":
        y = integer_labels(labels, "SHE training labels")
        c, d = int(logits.shape[1]), int(features.shape[1])
        sums, counts = np.zeros((2, c, d)), np.zeros((2, c), dtype=np.int64)  # [correct, all labelled]
        for start, h in blocks(features, "SHE training features"):
            z = _rows("SHE training logits", logits[start : start + len(h)])
            pred, yb = z.argmax(1), y[start : start + len(h)]
            for i, rows in enumerate((pred == yb, (yb >= 0) & (yb < c))):
                np.add.at(sums[i], yb[rows], h[rows])
                counts[i] += np.bincount(yb[rows], minlength=c)[:c]
        if (counts[1] == 0).any():
            raise ValueError(f"SHE: class(es) {np.flatnonzero(counts[1] == 0).tolist()} have no training "
                             f"sample; every class needs one to store its pattern")
        fallback = counts[0] == 0
        if fallback.any():  # a barely trained network: the class's mean feature stands in
            log.warning("SHE: class(es) %s have no correctly classified training sample; their pattern is "
                        "the mean feature of all their training samples", np.flatnonzero(fallback).tolist())
        pick = np.where(fallback, 1, 0)
        self.patterns_ = sums[pick, np.arange(c)] / counts[pick, np.arange(c)][:, None]
        return self

    def score(self, features, logits, **_) -> np.ndarray:
        h = _rows("SHE features", features)
        pred = _rows("SHE logits", logits).argmax(1)
        return (h * self.patterns_[pred]).sum(1)


__all__ = ["GEN", "KLMatching", "RMDS", "SHE", "ViM", "vim_auto_dim"]
