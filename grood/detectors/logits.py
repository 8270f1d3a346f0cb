"""Output-space baselines: MSP, MaxLogit, Energy — functions of the logits alone."""

from __future__ import annotations

import numpy as np

from grood.detectors.base import Detector, logsumexp, softmax


class MSP(Detector):
    """Maximum softmax probability (Hendrycks & Gimpel 2017)."""

    def score(self, logits: np.ndarray, **_) -> np.ndarray:
        return softmax(logits).max(1)


class MaxLogit(Detector):
    """Largest logit (Hendrycks et al. 2022)."""

    def score(self, logits: np.ndarray, **_) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64).max(1)


class Energy(Detector):
    """Negative free energy ``T·logsumexp(z/T)`` (Liu et al. 2020); higher = ID."""

    #: OpenOOD v1.5's sweep of T (its ebo post-processor)
    sweep_grid = {"temperature": [1, 10, 100, 1000]}

    def __init__(self, temperature: float = 1.0):
        if temperature <= 0:
            raise ValueError(f"energy temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def score(self, logits: np.ndarray, **_) -> np.ndarray:
        return self.temperature * logsumexp(logits, self.temperature)
