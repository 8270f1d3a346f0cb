"""Stage `prepare_dataset`: fetch (cached, checksummed) and build one dataset."""

from __future__ import annotations

import logging
from pathlib import Path

from grood.storage import provenance, save_npz

log = logging.getLogger("grood")


def prepare_dataset_stage(name: str, spec: dict, raw_dir: str | Path, out_npz: str | Path) -> None:
    """Fetch (cached, checksummed) and build dataset ``name`` from its config ``spec``."""
    from grood.data import DataError, build_dataset

    params = {k: v for k, v in spec.items() if k not in ("source",)}
    try:
        arrays = build_dataset(spec["source"], params, Path(raw_dir))
    except DataError as e:
        raise DataError(f"dataset {name!r} (config datasets.{name}): {e}") from e
    meta = dict(arrays.pop("meta", {}))
    meta.update(provenance(dataset=name, spec=spec))
    for split in ("train", "test"):
        rows = arrays.get(f"x_{split}", arrays.get(f"files_{split}"))  # pixels, or a file list
        if rows is not None:
            meta[f"n_{split}"] = int(len(rows))
    if not meta.get("n_test"):
        raise ValueError(f"dataset {name!r} (source {spec['source']!r}) produced no test images")
    save_npz(out_npz, arrays, meta)
    log.info("dataset %s: %s", name, {k: v.shape for k, v in arrays.items()})
