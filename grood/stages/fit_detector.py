"""Stage `fit_detector`: fit one detector on the ID training arrays it needs (a faiss index for the
kNN-based ones) and save it for the `score` jobs."""

from __future__ import annotations

import logging
import pickle

from grood.chunks import open_arrays
from grood.storage import atomic_path, provenance

log = logging.getLogger("grood")


def fit_detector_stage(method: str, params: dict, train_stores: list, out_pkl) -> None:
    """Detector ``method`` with ``params``, fitted on the arrays it names from ``train_stores``."""
    from grood.detectors import make_detector

    det = make_detector(method, params)
    # lazy Zarr arrays: GROOD, kNN and Mahalanobis read them block by block, the others whole
    arrays = open_arrays(train_stores, det.fit_requires) if det.fit_requires else {}
    det.fit(**arrays)
    with atomic_path(out_pkl) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump({"detector": det, "method": method, "params": params,
                         "provenance": provenance(stores=list(map(str, train_stores)))}, f)


def load_detector(pkl):
    """The fitted detector :func:`fit_detector_stage` saved."""
    with open(pkl, "rb") as f:
        return pickle.load(f)["detector"]
