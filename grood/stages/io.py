"""Shared by the stages: job logging, reading dataset splits and named arrays from stores."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from pathlib import Path

import numpy as np

from grood.storage import load_npz

log = logging.getLogger("grood")


def setup_logging(log_path: str | None = None) -> None:
    """Log to ``log_path`` (a job's log file) and stderr; capture warnings too."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines list failed imports

@contextlib.contextmanager
def job_log(log_path: str):
    """The log of a job that runs inside the Snakemake process (a ``run:`` rule): what this thread
    logs to the ``grood`` logger goes to ``log_path``, and so does the traceback of an error,
    which is re-raised.  Other jobs' threads log to their own files at the same time."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    me = threading.get_ident()
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: record.thread == me)
    logger = logging.getLogger("grood")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    # which process ran it: one Snakemake process for all of them unless a job was spawned apart
    logger.info("in-process job: process %d, thread %d", os.getpid(), me)
    try:
        yield
    except BaseException:
        handler.stream.write(traceback.format_exc())
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()


def decode_workers(config: dict) -> int:
    """``loader.workers`` of a workflow config: processes that decode a file-list dataset.  Not a
    rule param: results do not depend on it, so changing it re-runs nothing."""
    return int((config.get("loader") or {}).get("workers", 0))


def search_on_gpu(config: dict) -> bool:
    """``search.gpu`` of a workflow config: k-NN detectors (GROOD, kNN) search on a GPU (faiss-gpu;
    the job asks for one) or, False, on the CPU only.  Not a rule param: an exact search gives the
    same scores on either, so changing it re-runs nothing."""
    return bool((config.get("search") or {}).get("gpu", False))


def load_split(data_npz: str | Path, split: str, workers: int = 0):
    """Images and labels of ``split`` (train/test); a missing split is an error naming the file.

    The images are a uint8 array, or for a file-list dataset (``store: files``) an
    :class:`~grood.data.filelist.ImageFiles` that the forward pass decodes batch by batch with
    ``workers`` parallel processes (:mod:`grood.net.loader`); both slice and index alike.
    """
    from grood.data.filelist import file_list_split

    names = [f"x_{split}", f"y_{split}", f"files_{split}", f"bytes_{split}"]
    arrays, meta = load_npz(data_npz, names)
    if f"files_{split}" in arrays:
        return file_list_split(arrays, meta, split, workers, f"{Path(data_npz).name} [{split}]")
    if f"x_{split}" not in arrays:
        raise KeyError(f"{data_npz} has no {split} split (its splits: "
                       f"{[k for k in ('train', 'test') if meta.get(f'n_{k}') is not None]}); "
                       f"a dataset without a training split cannot be the ID set")
    x = arrays[f"x_{split}"]
    y = arrays.get(f"y_{split}", np.full(len(x), -1, dtype=np.int64))
    return x, y


def dataset_meta(data_npz: str | Path) -> dict:
    """The ``__meta__`` of a prepared dataset (no array is read)."""
    return load_npz(data_npz, [])[1]


def _arrays_in(stores: list[str | Path]):
    """(name, lazy Zarr array) of every array in ``stores``, in store order."""
    import zarr

    for store in stores:
        if not Path(store).exists():
            raise FileNotFoundError(f"Zarr store {store} does not exist; re-run the rule that makes it")
        yield from zarr.open_group(str(store), mode="r").arrays()


def load_arrays(stores: list[str | Path], names: tuple[str, ...],
                rows: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Named arrays gathered from several Zarr stores (features, gradients); each name once.
    ``rows=(start, stop)`` reads only those rows."""
    sel = slice(None) if rows is None else slice(int(rows[0]), int(rows[1]))
    found: dict[str, np.ndarray] = {}
    for name, array in _arrays_in(stores):
        if name in names and name not in found:
            found[name] = array[sel]
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"array(s) {missing} are in none of {list(map(str, stores))}")
    return found


def stored_rows(stores: list[str | Path], names: tuple[str, ...]) -> int:
    """Row count of the first of ``names`` found in ``stores`` (without reading the data)."""
    for name, array in _arrays_in(stores):
        if name in names:
            return int(array.shape[0])
    raise KeyError(f"array(s) {list(names)} are in none of {list(map(str, stores))}")
