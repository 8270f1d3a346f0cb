"""The non-gradient family of Igoe et al. (arXiv 2205.10439) — a **reconstruction** (docs/methods.md §4).

The paper's exact score could not be read.  These detectors make its point measurable: for the last
layer, the per-label cross-entropy gradient is ``G_y = (p − e_y) hᵀ`` (rank 1), so every gradient
norm factorises into a feature factor and an output factor.  With ``y ~ p`` ("ExGrad")::

    E_y ‖G_y‖₁   = 2 ‖h‖₁ (1 − ‖p‖²)
    E_y ‖G_y‖_F² =   ‖h‖₂² (1 − ‖p‖²)

and GradNorm's gradient is the mean of ``G_y`` over uniform ``y``: ``‖(p − u) hᵀ‖₁ = ‖h‖₁ ‖p − u‖₁``.

Directions, checked on data (the measured AUROCs are in docs/results.md's tables, not here, so they
cannot go stale): ``1 − ‖p‖²`` grows with uncertainty, so the ExGrad ID scores are the negatives —
the un-negated expected gradient ranks OOD above ID on every MNIST set (docs/methods.md §4).  The
output factor keeps "confident = ID" (as MSP) and the feature factor GradNorm's "larger = ID"
(see :class:`FeatureNorm`, whose direction depends on the network).
"""

from __future__ import annotations

import numpy as np

from grood.detectors.base import Detector, check_finite, softmax
from grood.detectors.gradnorm import output_confidence


def _h_p(features, logits):
    h = np.asarray(check_finite("features", features), dtype=np.float64)
    p = softmax(check_finite("logits", logits))
    if len(h) != len(p):
        raise ValueError(f"features ({len(h)} rows) and logits ({len(p)} rows) differ in length")
    return h, p


class ExGradL1(Detector):
    """``S = −E_{y~p} ‖(p − e_y) hᵀ‖₁ = −2‖h‖₁(1 − ‖p‖²)``."""

    requires = ("features", "logits")
    reconstruction = True

    def score(self, features: np.ndarray, logits: np.ndarray, **_) -> np.ndarray:
        h, p = _h_p(features, logits)
        return -2.0 * np.abs(h).sum(1) * (1.0 - (p**2).sum(1))


class ExGradFro(Detector):
    """``S = −E_{y~p} ‖(p − e_y) hᵀ‖_F² = −‖h‖₂²(1 − ‖p‖²)``."""

    requires = ("features", "logits")
    reconstruction = True

    def score(self, features: np.ndarray, logits: np.ndarray, **_) -> np.ndarray:
        h, p = _h_p(features, logits)
        return -(h**2).sum(1) * (1.0 - (p**2).sum(1))


class FeatureNorm(Detector):
    """The feature factor alone: ``S = ‖h‖₁`` (GradNorm's reading: larger ID features).

    Its direction depends on the network: the backbone study in docs/results.md (config/backbones.yaml)
    shows it on two MNIST networks. We keep the published direction and report what it gives.
    """

    requires = ("features",)
    reconstruction = True

    def score(self, features: np.ndarray, **_) -> np.ndarray:
        return np.abs(np.asarray(check_finite("features", features), dtype=np.float64)).sum(1)


class OutputConfidence(Detector):
    """GradNorm's output factor alone: ``S = ‖p − u‖₁`` (confident = ID)."""

    requires = ("logits",)
    reconstruction = True

    def score(self, logits: np.ndarray, **_) -> np.ndarray:
        return output_confidence(logits)


class ExGradConfidence(Detector):
    """ExGrad's output factor alone, negated: ``S = −(1 − ‖p‖²)`` (minus the Gini impurity)."""

    requires = ("logits",)
    reconstruction = True

    def score(self, logits: np.ndarray, **_) -> np.ndarray:
        p = softmax(check_finite("logits", logits))
        return (p**2).sum(1) - 1.0


__all__ = ["ExGradL1", "ExGradFro", "FeatureNorm", "OutputConfidence", "ExGradConfidence"]
