"""GROOD ablations (docs/methods.md §1.6) that read the gradient store but skip the gradient kNN.

The cosine index (``grood`` with ``metric: cosine``) and the gradients w.r.t. the predicted
prototype or all prototypes (``grood`` with ``wrt: pred`` / ``wrt: all``) are parameters of
:class:`~grood.detectors.grood.GROOD`; the two below are their own methods.  Like GROOD, their
``prototype`` / ``wrt`` / ``temperature`` parameters choose which gradient store the pipeline reads.
"""

from __future__ import annotations

import numpy as np

from grood.detectors.base import check_finite
from grood.detectors.grood import GradientStoreDetector


class GROODProtoDist(GradientStoreDetector):
    """``S = ‖h − p_ood‖₂``: distance to the OOD prototype only, no gradients, no index.

    ``p_ood`` stands for "what OOD looks like", so the farther from it, the more ID: the sign is
    ``+``, kept by that logic.  It can invert for the ``mixup`` prototype, which lies between the
    classes, inside the ID cloud: where OOD features are larger than ID ones, the distance measures
    feature magnitude instead.  `snakemake --configfile config/ablations.yaml` measures it
    (results/ablations/mnist/results.md).
    ``wrt`` does not change ``proto_dist``; it names the store.
    """

    requires = ("proto_dist",)

    def score(self, proto_dist: np.ndarray, **_) -> np.ndarray:
        return np.asarray(check_finite("GROOD proto_dist", proto_dist), dtype=np.float64).ravel()


class GROODGradNorm(GradientStoreDetector):
    """``S = −‖g‖₁``: the NCP-gradient magnitude without the kNN.

    For ``wrt: ood`` ``‖g‖₁ = π_ood·‖(h − p_ood)/‖h − p_ood‖‖₁`` grows with the OOD-prototype
    probability, so a large gradient means OOD and the ID score is its negative.  It can invert for
    the ``mixup`` prototype, for the reason given in :class:`GROODProtoDist` (measured by
    config/ablations.yaml, results/ablations/mnist/results.md).
    """

    requires = ("gradients",)

    def score(self, gradients: np.ndarray, **_) -> np.ndarray:
        g = np.asarray(check_finite("GROOD gradients", gradients), dtype=np.float64)
        return -np.abs(g).sum(1)
