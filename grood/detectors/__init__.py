"""Detectors by name: every method behind the same ``fit``/``score`` interface."""

from __future__ import annotations

from grood.detectors.base import Detector
from grood.detectors.exgrad import ExGradConfidence, ExGradFro, ExGradL1, FeatureNorm, OutputConfidence
from grood.detectors.features import KNN, Mahalanobis
from grood.detectors.gradnorm import GradNorm
from grood.detectors.grood import GROOD
from grood.detectors.grood_ablations import GROODGradNorm, GROODProtoDist
from grood.detectors.logits import MSP, Energy, MaxLogit
from grood.detectors.odin import ODIN

METHODS: dict[str, type[Detector]] = {
    "msp": MSP,
    "maxlogit": MaxLogit,
    "energy": Energy,
    "odin": ODIN,
    "mahalanobis": Mahalanobis,
    "knn": KNN,
    "gradnorm": GradNorm,
    # Igoe et al. (§4): reconstruction, flagged as such in every result
    "exgrad_l1": ExGradL1,
    "exgrad_fro": ExGradFro,
    "feature_norm": FeatureNorm,
    "output_confidence": OutputConfidence,
    "exgrad_confidence": ExGradConfidence,
    "grood": GROOD,
    # GROOD ablations (§1.6) over the same gradient store; the cosine index, wrt: pred/all and the
    # prototype sources are GROOD parameters
    "grood_proto_dist": GROODProtoDist,
    "grood_gnorm": GROODGradNorm,
}


def make_detector(method: str, params: dict | None = None) -> Detector:
    """Instantiate ``method`` with ``params``; unknown names or parameters are errors that say which."""
    if method not in METHODS:
        raise ValueError(f"unknown detector method {method!r}; available: {sorted(METHODS)}")
    cls = METHODS[method]
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise ValueError(f"detector {method!r}: bad parameters {params} ({e})") from e


__all__ = ["Detector", "METHODS", "make_detector"]
