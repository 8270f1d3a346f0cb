"""Detectors by name: every method behind the same ``fit``/``score`` interface."""

from __future__ import annotations

from grood.detectors.base import Detector
from grood.detectors.grood import GROOD
from grood.detectors.logits import MSP, Energy, MaxLogit

METHODS: dict[str, type[Detector]] = {
    "msp": MSP,
    "maxlogit": MaxLogit,
    "energy": Energy,
    "grood": GROOD,
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
