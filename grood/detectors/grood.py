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
from grood.method.vocab import PROTOTYPE_OVERRIDES, check_gradient_space, gradient_space, prototype_overrides
from grood.data.subset import training_share_mask
from grood.search.spec import IndexParamError
from grood.storage.chunks import check_rows, iter_blocks

log = logging.getLogger(__name__)


class GradientStoreDetector(Detector):
    """A detector over a gradient store: ``prototype`` / ``wrt`` / ``temperature`` choose which one
    (:func:`grood.method.vocab.gradient_space`) the pipeline feeds in.

    ``layer``, ``lam``, ``n_mix`` and ``train_share`` are the detector's own prototype settings (None:
    the config's ``prototypes:`` values; ``train_share`` 1: every training row): set, they name a
    prototype variant with its own prototypes and gradient stores (:func:`grood.method.vocab.prototype_name`),
    which is how a tuning grid sweeps them.  A setting its source does not read is refused
    (:meth:`unread_settings`) and dropped from a grid point (:meth:`effective_params`)."""

    def __init__(self, prototype: str = "mixup", wrt: str = "ood", temperature: float = 1.0,
                 layer: str | None = None, lam: float | None = None, n_mix: int | None = None,
                 train_share: float = 1.0):
        check_gradient_space(prototype, wrt, temperature)
        if lam is not None and not 0.0 <= float(lam) <= 1.0:
            raise ValueError(f"lam must lie in [0, 1], got {lam}")
        if n_mix is not None and int(n_mix) < 1:
            raise ValueError(f"n_mix must be ≥ 1, got {n_mix}")
        if not 0.0 < float(train_share) <= 1.0:
            raise ValueError(f"train_share must lie in (0, 1], got {train_share}")
        self.prototype, self.wrt, self.temperature = prototype, wrt, float(temperature)
        self.layer, self.lam = layer, None if lam is None else float(lam)
        self.n_mix, self.train_share = None if n_mix is None else int(n_mix), float(train_share)

    @property
    def prototype_overrides(self) -> dict:
        """The prototype settings this detector sets itself and its source reads."""
        return prototype_overrides(self.prototype, {k: getattr(self, k) for k in PROTOTYPE_OVERRIDES})

    @property
    def gradient_space(self) -> str:
        return gradient_space(self.prototype, self.wrt, self.temperature, self.prototype_overrides)

    @classmethod
    def unread_settings(cls, params: dict) -> list[str]:
        """The prototype settings ``params`` sets that its prototype source does not read."""
        source = params.get("prototype", cls.param_defaults()["prototype"])
        read = prototype_overrides(source, params)
        return [k for k in PROTOTYPE_OVERRIDES
                if params.get(k) is not None and k not in read and not (k == "train_share" and float(params[k]) == 1.0)]

    @classmethod
    def effective_params(cls, params: dict) -> dict:
        unread = set(cls.unread_settings(params))
        return {k: v for k, v in params.items() if k not in unread}


class GROOD(GradientStoreDetector, IndexedDetector):
    """Fitting and scoring stream their arrays (numpy or Zarr) block by block: the gradients of a
    million training images are never held whole; only the index is (``ivf_pq`` compresses it)."""

    requires = ("gradients",)
    fit_requires = ("gradients", "logits", "labels")
    state_arrays = ("n_indexed_",)
    #: the grid of the authors' OpenOOD post-processor (configs/postprocessors/grood.yaml: k, λ, the
    #: share of training data, the OOD prototype from noise or OOD-validation images; its single
    #: layer index is the mix-up stage, here layer1 and layer2 of the CNNs)
    sweep_grid = {"k": [1, 10, 20, 50, 100], "lam": [0.1, 0.3, 0.6, 0.8, 0.9], "layer": ["layer1", "layer2"],
                  "train_share": [0.01, 0.1, 0.25, 0.5, 0.7, 1.0], "prototype": ["mixup", "noise", "ood_val"]}

    def __init__(self, k: int = 1, index: dict | None = None, metric: str = "l2", prototype: str = "mixup",
                 wrt: str = "ood", temperature: float = 1.0, layer: str | None = None, lam: float | None = None,
                 n_mix: int | None = None, train_share: float = 1.0):
        super().__init__(prototype, wrt, temperature, layer, lam, n_mix, train_share)
        if int(k) < 1:
            raise ValueError(f"grood k must be ≥ 1, got {k}")
        if metric not in faiss_index.METRICS:  # names the detector and its config key
            raise IndexParamError("metric", f"grood metric must be one of {faiss_index.METRICS}, got {metric!r}")
        self.k, self.metric = int(k), metric
        self._set_index(index, metric)  # `index: {kind: ..., nlist: ...}` (grood.search.kinds), checked now

    def indexed_rows(self, gradients, logits, labels, **_):
        """``(vectors, mask)``: the training rows the index holds — the correctly classified ones of
        the ``train_share`` the prototypes were built from (also what :mod:`grood.stages.index_quality`
        searches exactly to rate an approximate index)."""
        mask = correctly_classified(logits, labels, int(gradients.shape[0]))
        if self.train_share < 1.0:
            mask &= training_share_mask(np.asarray(labels[:]), self.train_share)
        return gradients, mask

    def fit(self, gradients, logits, labels, with_index: bool = True, **_) -> "GROOD":
        """``with_index=False``: count the rows to index but build no index (``shards.index`` > 1)."""
        gradients, correct = self.indexed_rows(gradients, logits, labels)
        if not correct.any():
            raise ValueError("GROOD: no correctly classified training sample to index")
        self.n_indexed_ = int(correct.sum())
        if not with_index:
            return self
        self.build_index(gradients, correct, name="GROOD training gradients")
        log.info("GROOD index: %d of %d training gradients (correctly classified), %d of them identical to "
                 "another", self.n_indexed_, len(correct), len(self.index_duplicates_))
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

