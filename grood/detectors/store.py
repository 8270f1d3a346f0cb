"""Fitted detectors on disk without pickle, so a run someone sends you is safe to open.

One ``.npz`` per fitted detector, written atomically (:func:`grood.storage.save_npz`):

- ``__meta__``: JSON text — ``format``, ``format_version``, ``method`` (a :data:`METHODS` name),
  ``class`` (checked, never imported), ``params``, ``state`` (each entry's kind: ``array`` or
  ``faiss``) and ``provenance``;
- one numeric array per fitted attribute (:meth:`Detector.get_state`); a faiss index is stored as
  its own serialisation (``faiss.serialize_index`` bytes, uint8), beside it the rows it stores once
  (``index_duplicates_``, (M, 2) int64, :mod:`grood.search.duplicates`);
- ``index_shards`` (only when > 1, config ``shards.index``): the detector was fitted without its
  index (:class:`~grood.detectors.base.IndexedDetector`), which shard jobs search; the file then
  holds every fitted entry but the faiss ones and their duplicates.

Reading never unpickles: ``np.load(allow_pickle=False)``, the class comes from the registry by
method name, the parameters go through :func:`make_detector`'s checks, and the state must hold
exactly the entries the class declares, with numeric dtypes.  Anything else is refused with a
:class:`DetectorFileError` that names the file and the fix.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from grood.detectors import METHODS, make_detector
from grood.detectors.base import Detector, IndexedDetector
from grood.storage import provenance, save_npz

FORMAT = "grood-detector"
FORMAT_VERSION = 1
SUFFIX = ".npz"
_NUMERIC_KINDS = "biuf"  # bool, signed/unsigned integer, float: nothing that can hold an object
_FIX = ("Fix: fit the detector again from the run's own training stores (in the workflow: "
        "`snakemake --forcerun fit_detector`), or ask whoever sent the run for files written by grood")


class DetectorFileError(ValueError):
    """A stored detector that grood refuses to load (not its format, tampered, or another version)."""


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def method_of(det: Detector) -> str:
    """The registry name of ``det``'s class (its ``method`` in the config)."""
    names = [m for m, cls in METHODS.items() if type(det) is cls]
    if not names:
        raise ValueError(f"{type(det).__name__} is not a registered detector (grood.detectors.METHODS); "
                         f"only registered detectors can be stored")
    return names[0]


def _kinds(cls: type[Detector], index_shards: int = 1) -> dict[str, str]:
    """Each fitted entry's kind; an index-sharded fit (``index_shards`` > 1) stores no faiss entry
    and none of the arrays that belong to it."""
    with_index = {**{n: "array" for n in cls.state_index_arrays}, **{n: "faiss" for n in cls.state_indexes}}
    return {**{n: "array" for n in cls.state_arrays}, **(with_index if index_shards == 1 else {})}


def save_detector(det: Detector, path: str | os.PathLike, method: str | None = None, index_shards: int = 1,
                  **extra) -> None:
    """Store ``det`` (fitted, or a method without state) at ``path``; ``extra`` goes to provenance.
    ``index_shards`` > 1: ``det`` was fitted ``with_index=False``; shard jobs search its index."""
    method = method or method_of(det)
    if METHODS.get(method) is not type(det):
        raise ValueError(f"method {method!r} does not name {type(det).__name__}; use {method_of(det)!r}")
    index_shards = int(index_shards)
    if index_shards > 1 and not isinstance(det, IndexedDetector):
        raise ValueError(f"{method} has no k-NN index to shard; store it with index_shards=1")
    if index_shards < 1:
        raise ValueError(f"index_shards must be ≥ 1, got {index_shards}")
    names = det.state_arrays if index_shards > 1 else det.state_names
    if names and not all(hasattr(det, n) for n in names):
        raise ValueError(f"{method} is not fitted (it has no {list(names)}); call fit() first")
    state = {n: v for n, v in det.get_state().items() if n in names}
    for name, value in state.items():
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"{method} state {name!r} has dtype {value.dtype}: only numeric arrays are stored")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "method": method,
            "class": class_path(type(det)), "params": det.get_params(),
            "state": {n: k for n, k in _kinds(type(det), index_shards).items() if n in state},
            **({"index_shards": index_shards} if index_shards > 1 else {}),
            "provenance": provenance(**extra)}
    save_npz(path, state, meta)


def read_header(path: str | os.PathLike) -> dict:
    """The checked JSON header of a stored detector (method, params, provenance), without its arrays."""
    path = Path(path)
    with _open(path) as z:
        return _header(path, z)


def load_detector(path: str | os.PathLike) -> Detector:
    """The detector stored at ``path`` by :func:`save_detector`; refuses anything else (see module doc)."""
    path = Path(path)
    with _open(path) as z:
        meta = _header(path, z)
        det = make_detector(meta["method"], meta["params"])
        state = {}
        for name, kind in meta["state"].items():
            try:
                value = z[name]
            except ValueError as e:  # an object array: loading it would unpickle
                raise DetectorFileError(f"{path}: refused: entry {name!r} is a pickled object array "
                                        f"({e}); grood never unpickles detector files. {_FIX}") from None
            _check_array(path, name, kind, value)
            state[name] = value
    shards = meta.get("index_shards", 1)
    try:
        det.set_state(state, without_indexes=shards > 1)
    except ValueError as e:
        raise DetectorFileError(f"{path}: refused: {e}. {_FIX}") from None
    if shards > 1:
        det.index_shards = shards
    return det


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"no stored detector {path}; {_FIX}")
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as e:  # not .npy/.npz: np.load would only read it by unpickling
        raise DetectorFileError(f"{path}: refused: not an .npz archive ({e}). A detector file of grood "
                                f"before format {FORMAT_VERSION} is a pickle, which can run code when "
                                f"opened. {_FIX}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DetectorFileError(f"{path}: cannot be read ({type(e).__name__}: {e}); it is truncated or "
                                f"corrupt. {_FIX}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DetectorFileError(f"{path}: refused: a single .npy array, not a stored detector. {_FIX}")
    return z


def _header(path: Path, z) -> dict:
    """The ``__meta__`` JSON of an open archive, checked field by field against this grood."""
    def refuse(why: str) -> DetectorFileError:
        return DetectorFileError(f"{path}: refused: {why}. {_FIX}")

    if "__meta__" not in z.files:
        raise refuse(f"no __meta__ header (entries {sorted(z.files)}): not a stored grood detector")
    try:
        raw = z["__meta__"]
    except ValueError:
        raise refuse("the __meta__ header is a pickled object array") from None
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise refuse(f"the __meta__ header must be JSON text, got a {raw.dtype} array of shape {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise refuse(f"the __meta__ header is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise refuse(f"format is {meta.get('format') if isinstance(meta, dict) else meta!r}, not {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise DetectorFileError(
            f"{path}: format version {version!r}, this grood reads version {FORMAT_VERSION}. Fix: "
            + ("upgrade grood to the version that wrote it" if newer else _FIX.removeprefix("Fix: ")))
    method = meta.get("method")
    if method not in METHODS:
        raise refuse(f"unknown detector method {method!r}; this grood knows {sorted(METHODS)}")
    expected_class = class_path(METHODS[method])
    if meta.get("class") != expected_class:
        raise refuse(f"class {meta.get('class')!r} does not match method {method!r} ({expected_class}); "
                     f"grood never imports a class named by a file")
    if not isinstance(meta.get("params"), dict):
        raise refuse(f"params must be a JSON object, got {meta.get('params')!r}")
    try:
        make_detector(method, meta["params"])
    except ValueError as e:
        raise refuse(str(e)) from None
    shards = meta.get("index_shards", 1)
    if type(shards) is not int or shards < 1 or (shards > 1 and not issubclass(METHODS[method], IndexedDetector)):
        raise refuse(f"index_shards {shards!r}: must be an integer ≥ 1, and 1 for {method} (it has no k-NN index)")
    state = meta.get("state")
    kinds = _kinds(METHODS[method], shards)
    if not isinstance(state, dict) or (state and state != kinds):
        raise refuse(f"state entries {state!r}; a fitted {method} has exactly {kinds}")
    extra = sorted(set(z.files) - {"__meta__"} - set(state))
    if extra:
        raise refuse(f"entries {extra} are not in the header's state {sorted(state)}")
    if kinds and not state and METHODS[method].fit_requires:
        raise refuse(f"{method} needs fitting but the file holds no fitted state")
    return meta


def _check_array(path: Path, name: str, kind: str, value: np.ndarray) -> None:
    ok = value.dtype == np.uint8 and value.ndim == 1 if kind == "faiss" else value.dtype.kind in _NUMERIC_KINDS
    if not ok:
        raise DetectorFileError(f"{path}: refused: entry {name!r} ({kind}) has dtype {value.dtype} and shape "
                                f"{value.shape}; expected {'1-D uint8 bytes' if kind == 'faiss' else 'numbers'}. "
                                f"{_FIX}")


__all__ = ["DetectorFileError", "FORMAT", "FORMAT_VERSION", "SUFFIX", "load_detector", "method_of",
           "read_header", "save_detector"]
