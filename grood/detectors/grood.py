"""GROOD (ElAraby et al., TMLR 2025): k-NN distance in the NCP-loss gradient space.

The gradients themselves come from :mod:`grood.method.gradients` (a pipeline stage); this detector indexes
the gradients of the *correctly classified* ID training samples with faiss and scores a sample by
minus the squared L2 distance to its k-th nearest training gradient.
"""

from __future__ import annotations

import logging

import numpy as np

from grood import search as faiss_index
from grood.detectors.base import Detector, IndexedDetector
from grood.method.vocab import check_gradient_space, gradient_space
from grood.search.spec import IndexParamError
from grood.storage.chunks import check_rows, iter_blocks

log = logging.getLogger(__name__)


class GradientStoreDetector(Detector):
    """A detector over a gradient store: ``prototype`` / ``wrt`` / ``temperature`` choose which one
    (:func:`grood.method.vocab.gradient_space`) the pipeline feeds in."""

    def __init__(self, prototype: str = "mixup", wrt: str = "ood", temperature: float = 1.0):
        check_gradient_space(prototype, wrt, temperature)
        self.prototype, self.wrt, self.temperature = prototype, wrt, float(temperature)

    @property
    def gradient_space(self) -> str:
        return gradient_space(self.prototype, self.wrt, self.temperature)


class GROOD(GradientStoreDetector, IndexedDetector):
    """Fitting and scoring stream their arrays (numpy or Zarr) block by block: the gradients of a
    million training images are never held whole; only the index is (``ivf_pq`` compresses it)."""

    requires = ("gradients",)
    fit_requires = ("gradients", "logits", "labels")
    state_arrays = ("n_indexed_",)

    def __init__(self, k: int = 1, index: dict | None = None, metric: str = "l2", prototype: str = "mixup",
                 wrt: str = "ood", temperature: float = 1.0):
        super().__init__(prototype, wrt, temperature)
        if int(k) < 1:
            raise ValueError(f"grood k must be ≥ 1, got {k}")
        if metric not in faiss_index.METRICS:  # names the detector and its config key
            raise IndexParamError("metric", f"grood metric must be one of {faiss_index.METRICS}, got {metric!r}")
        self.k, self.metric = int(k), metric
        self._set_index(index, metric)  # `index: {kind: ..., nlist: ...}` (grood.search.kinds), checked now

    def indexed_rows(self, gradients, logits, labels, **_):
        """``(vectors, mask)``: the training rows the index holds — the correctly classified ones
        (also what :mod:`grood.stages.index_quality` searches exactly to rate an approximate index)."""
        return gradients, correctly_classified(logits, labels, int(gradients.shape[0]))

    def fit(self, gradients, logits, labels, with_index: bool = True, **_) -> "GROOD":
        """``with_index=False``: count the rows to index but build no index (``shards.index`` > 1)."""
        gradients, correct = self.indexed_rows(gradients, logits, labels)
        if not correct.any():
            raise ValueError("GROOD: no correctly classified training sample to index")
        self.n_indexed_ = int(correct.sum())
        if not with_index:
            return self
        self.index_ = faiss_index.build_index(gradients, self.index_spec, correct,
                                                  name="GROOD training gradients")
        log.info("GROOD index: %d of %d training gradients (correctly classified)",
                 self.n_indexed_, len(correct))
        return self

    def score(self, gradients, **_) -> np.ndarray:
        return self.score_from_kth_distance(self.kth_distance(gradients, "GROOD gradients"))


def correctly_classified(logits, labels, n: int) -> np.ndarray:
    """``argmax(logits) == label`` per row, reading the (N, C) logits block by block."""
    check_rows("GROOD training set", n, logits=logits, labels=labels)
    y = np.asarray(labels[:])
    out = np.empty(n, dtype=bool)
    for start, z in iter_blocks(logits):
        out[start : start + len(z)] = np.asarray(z).argmax(1) == y[start : start + len(z)]
    return out
