"""Activation shaping and rectification (docs/baselines.md §1–4): the penultimate features
``h`` are changed, the head ``z' = W h' + b`` re-run, and the energy ``logsumexp(z')`` is the score.

- ReAct (Sun, Guo & Li, NeurIPS 2021): ``h' = min(h, c)``, ``c`` = the ``percentile``-th percentile
  of every ID training activation;
- ASH (Djurisic et al., ICLR 2023): per sample, zero all but the top ``k = D − round(D·p/100)``
  activations, then keep them (``p``), set them to ``s1/k`` (``b``) or scale them by
  ``exp(s1/s2)`` (``s``), with ``s1``/``s2`` the sums before/after pruning;
- SCALE (Xu et al., ICLR 2024): ``h' = h·exp(s1/s2)`` — ASH-S's factor on the *unpruned* features;
- DICE (Sun & Li, ECCV 2022): zero the ``sparsity`` % of head weights with the smallest
  contribution ``W ⊙ mean(h)``; the masked head gives the logits.

All four need the head (``head_weight``, ``head_bias``) when fitted and keep it in their state.
Every score is float64; the features of the part are read whole, the training set block by block.
"""

from __future__ import annotations

import logging

import numpy as np

from grood.detectors.base import Detector, check_finite
from grood.detectors.head import blocks, check_head, energy_of
from grood.storage.chunks import seeded_sample, take_rows

log = logging.getLogger(__name__)

_HEAD_FIT = ("features", "logits", "head_weight", "head_bias")


def _features(name: str, features) -> np.ndarray:
    return np.asarray(check_finite(name, np.asarray(features)), dtype=np.float64)


def _check_percent(method: str, key: str, value: float, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 100.0:
        raise ValueError(f"{method} {key}: must be a number in [0, 100) ({meaning}), got {value!r}")
    return float(value)


def kept_count(width: int, percentile: float) -> int:
    """Activations ASH and SCALE keep of ``width``: ``width − round(width·p/100)`` (numpy rounding,
    half to even, as the authors' code)."""
    return int(width) - int(np.round(width * percentile / 100.0))


def top_k_indices(h: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` largest entries' columns; ties go to the lower column (stable order)."""
    return np.argsort(-h, axis=1, kind="stable")[:, :k]


def _nonnegative(method: str, h: np.ndarray) -> np.ndarray:
    if h.size and h.min() < 0:
        raise ValueError(f"{method}: features must be non-negative (post-ReLU activations, as the method "
                         f"assumes), got a minimum of {h.min():.3g}; use it on a network whose penultimate "
                         f"layer ends in a ReLU")
    return h


def ash(h: np.ndarray, percentile: float, variant: str) -> np.ndarray:
    """ASH-``variant`` (``p``, ``b``, ``s``) of the rows of ``h`` (non-negative, float64)."""
    n, width = h.shape
    k = kept_count(width, percentile)
    idx = top_k_indices(h, k)
    kept = np.take_along_axis(h, idx, 1)
    s1 = h.sum(1)
    if variant == "b":
        kept = np.repeat((s1 / k)[:, None], k, axis=1)
    elif variant == "s":
        s2 = kept.sum(1)
        # s2 = 0 only when every kept (largest) activation is 0, so the pruned row is 0 whatever the factor
        kept = kept * np.exp(np.divide(s1, s2, out=np.zeros_like(s1), where=s2 > 0))[:, None]
    out = np.zeros_like(h)
    np.put_along_axis(out, idx, kept, 1)
    return out


def scale(h: np.ndarray, percentile: float) -> np.ndarray:
    """SCALE: every row of ``h`` times ``exp(s1/s2)``, ``s2`` the sum of its top-k activations."""
    k = kept_count(h.shape[1], percentile)
    s1 = h.sum(1)
    s2 = np.take_along_axis(h, top_k_indices(h, k), 1).sum(1)
    return h * np.exp(np.divide(s1, s2, out=np.zeros_like(s1), where=s2 > 0))[:, None]


class _HeadDetector(Detector):
    """Keeps the checked head ``weight_`` (C, D), ``bias_`` (C,) from the fit."""

    requires = ("features",)
    fit_requires = _HEAD_FIT
    state_arrays = ("weight_", "bias_")

    def _fit_head(self, features, logits, head_weight, head_bias) -> None:
        self.weight_, self.bias_ = check_head(type(self).__name__, head_weight, head_bias, features, logits)

    def _score_features(self, features) -> np.ndarray:
        h = _features(f"{type(self).__name__} features", features)
        if h.ndim != 2 or h.shape[1] != self.weight_.shape[1]:
            raise ValueError(f"{type(self).__name__}: features of shape {h.shape}; the fitted head takes "
                             f"{self.weight_.shape[1]} dimensions")
        return h


class ReAct(_HeadDetector):
    """``S = logsumexp(W min(h, c) + b)``, ``c`` the ``percentile``-th percentile (numpy's linear
    interpolation) of all ID training activations; fitted on at most ``fit_rows`` training rows
    (a seeded sample beyond that, as ViM's authors use 200k ImageNet images)."""

    state_arrays = ("threshold_", "weight_", "bias_")
    sweep_grid = {"percentile": [85, 90, 95, 99]}

    def __init__(self, percentile: float = 90.0, fit_rows: int = 200_000, seed: int = 0):
        self.percentile = _check_percent("react", "percentile", percentile,
                                         "the clipping threshold's percentile of ID activations, e.g. 90")
        if isinstance(fit_rows, bool) or int(fit_rows) < 1:
            raise ValueError(f"react fit_rows: must be an integer ≥ 1 (training rows the percentile is "
                             f"taken over), got {fit_rows!r}")
        self.fit_rows, self.seed = int(fit_rows), int(seed)

    def fit(self, features, logits, head_weight, head_bias, **_) -> "ReAct":
        self._fit_head(features, logits, head_weight, head_bias)
        n = int(features.shape[0])
        if n == 0:
            raise ValueError("ReAct: no training features to take the percentile of")
        rows = seeded_sample(n, self.fit_rows, self.seed)
        h = take_rows(features, rows) if len(rows) < n else np.asarray(features[:])
        h = _features("ReAct training features", h)
        self.threshold_ = float(np.percentile(h, self.percentile))
        log.info("ReAct: clipping at %.4g (percentile %g of %d training rows)", self.threshold_,
                 self.percentile, len(h))
        return self

    def score(self, features, **_) -> np.ndarray:
        h = self._score_features(features)
        return energy_of(np.minimum(h, self.threshold_), self.weight_, self.bias_)


class _TopKShaping(_HeadDetector):
    """A head detector that reshapes each sample's non-negative activations by its top ``percentile``
    share (ASH, SCALE: ``_shape``), then scores the energy of the head on them."""

    method_name = ""  # the config's method name, in errors

    def fit(self, features, logits, head_weight, head_bias, **_) -> "_TopKShaping":
        self._fit_head(features, logits, head_weight, head_bias)
        _check_kept(self.method_name, self.weight_.shape[1], self.percentile)
        return self

    def score(self, features, **_) -> np.ndarray:
        h = _nonnegative(self.method_name, self._score_features(features))
        return energy_of(self._shape(h), self.weight_, self.bias_)

    def _shape(self, h: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ASH(_TopKShaping):
    """ASH-S/-B/-P (``variant`` ``s``, ``b``, ``p``) on the penultimate features, then energy."""

    method_name = "ash"
    sweep_grid = {"percentile": [65, 70, 75, 80, 85, 90, 95]}
    VARIANTS = ("s", "b", "p")

    def __init__(self, variant: str = "s", percentile: float = 90.0):
        if variant not in self.VARIANTS:
            raise ValueError(f"ash variant: must be one of {list(self.VARIANTS)} (ASH-S scales, ASH-B "
                             f"binarises, ASH-P only prunes the kept activations), got {variant!r}")
        self.variant = variant
        self.percentile = _check_percent("ash", "percentile", percentile,
                                         "the share of each sample's activations set to zero, e.g. 90")

    def _shape(self, h: np.ndarray) -> np.ndarray:
        return ash(h, self.percentile, self.variant)


class SCALE(_TopKShaping):
    """SCALE: ``h·exp(s1/s2)`` (no pruning), then energy."""

    method_name = "scale"
    sweep_grid = {"percentile": [50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 97, 99]}

    def __init__(self, percentile: float = 85.0):
        self.percentile = _check_percent("scale", "percentile", percentile,
                                         "the share of activations left out of s2, e.g. 85")

    def _shape(self, h: np.ndarray) -> np.ndarray:
        return scale(h, self.percentile)


def _check_kept(method: str, width: int, percentile: float) -> None:
    if kept_count(width, percentile) < 1:
        top = 100.0 * (width - 0.5) / width
        raise ValueError(f"{method} percentile: {percentile:g} keeps no activation of the {width}-dimensional "
                         f"features; use a percentile below {top:.4g}")


class DICE(_HeadDetector):
    """``S = logsumexp((W ⊙ M) h + b)``, ``M`` zeroing the ``sparsity`` % of entries of
    ``W ⊙ mean_train(h)`` at or below their percentile (numpy's, linear interpolation)."""

    state_arrays = ("masked_weight_", "bias_", "mean_features_", "threshold_")
    sweep_grid = {"sparsity": [10, 30, 50, 70, 90]}

    def __init__(self, sparsity: float = 90.0):
        self.sparsity = _check_percent("dice", "sparsity", sparsity,
                                       "the share of head weights dropped, by contribution, e.g. 90")

    def fit(self, features, logits, head_weight, head_bias, **_) -> "DICE":
        self._fit_head(features, logits, head_weight, head_bias)
        total, n = np.zeros(self.weight_.shape[1]), 0
        for _, h in blocks(features, "DICE training features"):
            total += h.sum(0)
            n += len(h)
        if n == 0:
            raise ValueError("DICE: no training features to average")
        self.mean_features_ = total / n
        contrib = self.mean_features_[None, :] * self.weight_
        self.threshold_ = float(np.percentile(contrib, self.sparsity))
        self.masked_weight_ = np.where(contrib > self.threshold_, self.weight_, 0.0)
        log.info("DICE: %d of %d head weights kept", int((self.masked_weight_ != 0).sum()), contrib.size)
        del self.weight_  # the masked head is the state
        return self

    def _score_features(self, features) -> np.ndarray:
        h = _features("DICE features", features)
        if h.ndim != 2 or h.shape[1] != self.masked_weight_.shape[1]:
            raise ValueError(f"DICE: features of shape {h.shape}; the fitted head takes "
                             f"{self.masked_weight_.shape[1]} dimensions")
        return h

    def score(self, features, **_) -> np.ndarray:
        return energy_of(self._score_features(features), self.masked_weight_, self.bias_)


__all__ = ["ASH", "DICE", "ReAct", "SCALE", "ash", "kept_count", "scale", "top_k_indices"]
