"""The rest of the gradient family (docs/baselines.md §10–11): GradOrth and GAIA.

GradOrth (Behpour et al., NeurIPS 2023) — a **reconstruction**: the paper's method section could not
be read; the abstract says the score is the norm of the gradient's projection on the subspace that
matters for the ID data, found by SVD, a small projection meaning OOD.  Our reading: the last layer's
GradNorm gradient ``G = ∂KL(u ‖ softmax(z))/∂W = (p − u) hᵀ`` projected on ``M`` (D × k, the top
left singular vectors of the ID training feature matrix keeping a ``threshold`` share of its energy),
scored by the Frobenius norm, which for the rank-1 ``G`` is closed form::

    S = ‖G M Mᵀ‖_F = ‖p − u‖₂ · ‖Mᵀ h‖₂

GAIA (Chen et al., NeurIPS 2023) reads per-sample, per-channel gradient statistics of intermediate
feature maps that :func:`grood.net.gaia.gaia_statistics` computes with the network; the detector only
aggregates the cached array, as the authors' code does: ``S = −mean_k x_k²`` over its channels.
"""

from __future__ import annotations

import logging

import numpy as np

from grood.detectors.base import Detector, check_finite, softmax
from grood.detectors.head import blocks
from grood.method.vocab import GAIA_ARRAYS

log = logging.getLogger(__name__)


class GradOrth(Detector):
    """``S = ‖softmax(z) − u‖₂ · ‖Mᵀh‖₂`` (see the module doc); ``M`` the fewest eigenvectors of
    ``Σ h hᵀ`` (uncentred, all ID training features) whose eigenvalues reach ``threshold`` of the
    total — the SVD energy criterion."""

    requires = ("features", "logits")
    fit_requires = ("features",)
    state_arrays = ("basis_", "rank_")
    reconstruction = True
    sweep_grid = {"threshold": [0.9, 0.95, 0.97, 0.99]}

    def __init__(self, threshold: float = 0.97):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ValueError(f"gradorth threshold: must be a number in (0, 1] (the share of the ID feature "
                             f"matrix's energy the subspace keeps, e.g. 0.97), got {threshold!r}")
        self.threshold = float(threshold)

    def fit(self, features, **_) -> "GradOrth":
        d = int(features.shape[1])
        gram, n = np.zeros((d, d)), 0
        for _, h in blocks(features, "GradOrth training features"):
            gram += h.T @ h
            n += len(h)
        if n == 0:
            raise ValueError("GradOrth: no training features")
        lam, vec = np.linalg.eigh(gram)
        lam, vec = np.maximum(lam[::-1], 0.0), vec[:, ::-1]  # descending: squared singular values
        if lam.sum() <= 0:
            raise ValueError("GradOrth: the training features are all zero; no ID subspace")
        share = np.cumsum(lam) / lam.sum()
        self.rank_ = int(np.searchsorted(share, self.threshold - 1e-12) + 1)
        self.basis_ = vec[:, : self.rank_]
        log.info("GradOrth: rank %d of %d keeps %.4f of the energy", self.rank_, d, share[self.rank_ - 1])
        return self

    def score(self, features, logits, **_) -> np.ndarray:
        h = np.asarray(check_finite("GradOrth features", np.asarray(features)), dtype=np.float64)
        p = softmax(check_finite("GradOrth logits", np.asarray(logits)))
        if len(h) != len(p):
            raise ValueError(f"features ({len(h)} rows) and logits ({len(p)} rows) differ in length")
        return np.linalg.norm(p - 1.0 / p.shape[1], axis=1) * np.linalg.norm(h @ self.basis_, axis=1)


class GAIA(Detector):
    """GAIA-A (``variant`` ``a``) or GAIA-Z (``z``): ``S = −mean_k x_k²`` over the cached array
    ``gaia_a`` (channel-wise average gradients over the output component) or ``gaia_z`` (each
    channel's share of non-zero gradients) of :func:`grood.net.gaia.gaia_statistics`.  Higher = ID: the
    authors' scores are these means, larger for OOD."""

    #: both arrays (the class-level list); an instance reads only its variant's (``self.requires``)
    requires = GAIA_ARRAYS
    VARIANTS = ("a", "z")

    def __init__(self, variant: str = "a"):
        if variant not in self.VARIANTS:
            raise ValueError(f"gaia variant: must be 'a' (GAIA-A, channel-wise average abnormality) or 'z' "
                             f"(GAIA-Z, zero-deflation abnormality), got {variant!r}")
        self.variant = variant
        self.requires = (f"gaia_{variant}",)

    def score(self, **arrays) -> np.ndarray:
        (name,) = self.requires
        if name not in arrays:
            raise ValueError(f"GAIA-{self.variant.upper()} scores the cached array {name!r} "
                             f"(grood.net.gaia.gaia_statistics); got {sorted(arrays)}")
        x = np.asarray(check_finite(f"GAIA {name}", np.asarray(arrays[name])), dtype=np.float64)
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"GAIA {name} must be (N, channels), got shape {x.shape}")
        return -(x**2).mean(1)


__all__ = ["GAIA", "GradOrth"]
