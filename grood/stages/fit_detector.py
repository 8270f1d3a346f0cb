"""Stage `fit_detector`: fit one detector on the ID training arrays it needs (a faiss index for the
kNN-based ones) and store it for the `score` jobs — without pickle (:mod:`grood.detectors.store`),
so a run someone sends you is safe to open."""

from __future__ import annotations

import logging

from grood.chunks import open_arrays

log = logging.getLogger("grood")


def fit_detector_stage(method: str, params: dict, train_stores: list, out_npz) -> None:
    """Detector ``method`` with ``params``, fitted on the arrays it names from ``train_stores``,
    stored at ``out_npz`` (arrays + JSON header; faiss indexes in faiss's own serialisation)."""
    from grood.detectors import make_detector
    from grood.detectors.store import save_detector

    det = make_detector(method, params)
    # lazy Zarr arrays: GROOD, kNN and Mahalanobis read them block by block, the others whole
    arrays = open_arrays(train_stores, det.fit_requires) if det.fit_requires else {}
    det.fit(**arrays)
    save_detector(det, out_npz, method=method, stores=list(map(str, train_stores)))
    log.info("%s fitted → %s", method, out_npz)
