"""Stage `figures_detector`: one detector's page — score histograms of the ID test set against each
OOD set with the 95%-TPR threshold, and the ROC curves — from one seed's stored scores. One job per
detector, so the pages are drawn while the other seeds still run."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("grood")


def figures_detector_stage(detector: str, id_scores, ood_scores: dict[str, str], groups: dict[str, str],
                           stem, title: str) -> None:
    """Draw ``stem`` (``.png`` + ``.pdf``): ``id_scores`` is the ID test set's ``.npy``,
    ``ood_scores`` each OOD set's (in the config's order), ``groups`` OOD set → near/far."""
    from grood.figures.detector_page import detector_page

    def read(path):  # finite: the score stage refuses anything else
        return np.load(path, allow_pickle=False)

    detector_page(detector, read(id_scores), {o: read(p) for o, p in ood_scores.items()},
                  {o: groups[o] for o in ood_scores}, stem, title)
    log.info("page of %s → %s", detector, stem)
