"""The one detector interface: ``fit`` on ID training arrays, ``score`` any arrays, higher = more ID.

Detectors take plain named numpy arrays (``logits``, ``features``, ``labels``, ``gradients``, …),
never a network: the network runs once per dataset and every detector reuses its outputs.
"""

from __future__ import annotations

import abc
import inspect

import numpy as np


class Detector(abc.ABC):
    #: arrays ``score`` needs, by name
    requires: tuple[str, ...] = ("logits",)
    #: arrays ``fit`` needs (ID training set), by name
    fit_requires: tuple[str, ...] = ()
    #: the method needs the network itself (e.g. ODIN's input perturbation), not only cached arrays
    needs_network: bool = False
    #: True when a result is our reading of a method whose exact score the paper does not show
    reconstruction: bool = False
    #: True when fitting looks at OOD data (must be flagged in every result)
    uses_ood_data: bool = False

    def fit(self, **arrays: np.ndarray) -> "Detector":
        return self

    @abc.abstractmethod
    def score(self, **arrays: np.ndarray) -> np.ndarray:
        """Per-sample scores, higher = more in-distribution."""

    @classmethod
    def param_defaults(cls) -> dict:
        """The hyper-parameters the constructor takes, with their defaults (scikit-learn style)."""
        if cls.__init__ is object.__init__:
            return {}
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.kind in kinds}

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in self.param_defaults()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Refuse NaN/inf scores or inputs: a silent AUROC over NaN would be a lie."""
    values = np.asarray(values)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise FloatingPointError(f"{name}: {bad} non-finite value(s); check the upstream features/model")
    return values


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def logsumexp(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, None]).sum(1))
