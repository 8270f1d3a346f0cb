"""GradNorm (Huang, Geng & Li, NeurIPS 2021), in closed form from cached features and logits (§2).

GradNorm is the L1 norm of ``∂KL(u ‖ softmax(z/T))/∂W`` for the last layer ``z = W h + b``.  Since
``∂KL/∂z = (p − u)/T`` with ``p = softmax(z/T)``, the gradient is the rank-1 matrix ``(p − u) hᵀ / T``
and its entrywise L1 norm factorises::

    S = (1/T) · ‖h‖₁ · ‖p − u‖₁

(the official code's all-ones target gives ``C·S``; same ranking).  Higher = ID.
"""

from __future__ import annotations

import numpy as np

from grood.detectors.base import Detector, check_finite, softmax


def output_confidence(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``‖p − u‖₁`` with ``p = softmax(z/T)``: GradNorm's output factor."""
    p = softmax(check_finite("logits", logits), temperature)
    return np.abs(p - 1.0 / p.shape[1]).sum(1)


def gradnorm_factors(features: np.ndarray, logits: np.ndarray, temperature: float = 1.0):
    """GradNorm's two factors: feature magnitude ``‖h‖₁`` and output confidence ``‖p − u‖₁``."""
    h = np.asarray(check_finite("features", features), dtype=np.float64)
    if len(h) != len(logits):
        raise ValueError(f"features ({len(h)} rows) and logits ({len(logits)} rows) differ in length")
    return np.abs(h).sum(1), output_confidence(logits, temperature)


class GradNorm(Detector):
    """``S = (1/T)·‖h‖₁·‖p − u‖₁``; T=1 as the paper."""

    requires = ("features", "logits")

    def __init__(self, temperature: float = 1.0):
        if temperature <= 0:
            raise ValueError(f"gradnorm temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def score(self, features: np.ndarray, logits: np.ndarray, **_) -> np.ndarray:
        h1, conf = gradnorm_factors(features, logits, self.temperature)
        return h1 * conf / self.temperature
