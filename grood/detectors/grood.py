"""GROOD (ElAraby et al., TMLR 2025): k-NN distance in the NCP-loss gradient space.

The gradients themselves come from :mod:`grood.gradients` (a pipeline stage); this detector indexes
the gradients of the *correctly classified* ID training samples with faiss and scores a sample by
minus the squared L2 distance to its k-th nearest training gradient.
"""

from __future__ import annotations

import logging

import numpy as np

from grood import index as faiss_index
from grood.detectors.base import Detector, check_finite
from grood.vocab import check_gradient_space, gradient_space

log = logging.getLogger(__name__)


class GradientStoreDetector(Detector):
    """A detector over a gradient store: ``prototype`` / ``wrt`` / ``temperature`` choose which one
    (:func:`grood.vocab.gradient_space`) the pipeline feeds in."""

    def __init__(self, prototype: str = "mixup", wrt: str = "ood", temperature: float = 1.0):
        check_gradient_space(prototype, wrt, temperature)
        self.prototype, self.wrt, self.temperature = prototype, wrt, float(temperature)

    @property
    def gradient_space(self) -> str:
        return gradient_space(self.prototype, self.wrt, self.temperature)


class GROOD(GradientStoreDetector):
    requires = ("gradients",)
    fit_requires = ("gradients", "logits", "labels")
    state_arrays = ("n_indexed_",)
    state_indexes = ("index_",)

    def __init__(self, k: int = 1, index: str = "flat", metric: str = "l2", nlist: int = 1024,
                 nprobe: int = 4, prototype: str = "mixup", wrt: str = "ood", temperature: float = 1.0):
        super().__init__(prototype, wrt, temperature)
        if int(k) < 1:
            raise ValueError(f"grood k must be ≥ 1, got {k}")
        for name, value, choices in (("index", index, faiss_index.KINDS), ("metric", metric, faiss_index.METRICS)):
            if value not in choices:
                raise ValueError(f"grood {name} must be one of {choices}, got {value!r}")
        self.k, self.index, self.metric = int(k), index, metric
        self.nlist, self.nprobe = int(nlist), int(nprobe)

    def fit(self, gradients: np.ndarray, logits: np.ndarray, labels: np.ndarray, **_) -> "GROOD":
        check_finite("GROOD training gradients", gradients)
        correct = np.asarray(logits).argmax(1) == np.asarray(labels)
        if not correct.any():
            raise ValueError("GROOD: no correctly classified training sample to index")
        self.n_indexed_ = int(correct.sum())
        self.index_ = faiss_index.build_index(gradients[correct], self.index, self.metric,
                                              self.nlist, self.nprobe)
        log.info("GROOD index: %d of %d training gradients (correctly classified)",
                 self.n_indexed_, len(correct))
        return self

    def score(self, gradients: np.ndarray, **_) -> np.ndarray:
        d = faiss_index.kth_distance(self.index_, check_finite("GROOD gradients", gradients), self.k,
                                     self.metric)
        return -d.astype(np.float64)
