"""``build_dataset``: one source's arrays, with the common parameters applied and ``meta``."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .errors import DataError
from .sources import REGISTRY, resolve_params
from .subset import SUBSET_METHOD, stratified_indices

log = logging.getLogger("grood.data")


def _counts(y: np.ndarray) -> dict[str, int]:
    labels, counts = np.unique(y, return_counts=True)
    return {str(int(k)): int(v) for k, v in zip(labels, counts)}


def build_dataset(source: str, params: dict | None, raw_dir: Path) -> dict:
    """Arrays of one image source, built offline from cached, sha256-verified upstream files.

    Returns ``x_test`` (uint8, (N, H, W) grey or (N, H, W, 3)), ``y_test`` (int64, -1 = no
    label), ``x_train``/``y_train`` where the source has a training split, and ``meta`` (a
    JSON-serialisable dict: source, licence, upstream files and digests, counts, shapes).

    Common ``params``: ``classes`` (keep only these labels, both splits), ``max_train`` /
    ``max_test`` (deterministic seeded class-stratified subset, see ``meta["subset_method"]``),
    ``seed`` (default 0); source-specific ones are listed in ``REGISTRY[source].params``.
    Raises :class:`DataError` for unknown sources/params and failed downloads or checks.
    """
    p = resolve_params(source, params)
    spec = REGISTRY[source]
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if spec.derived:  # e.g. scrambled_train: the base source's arrays first
        out = spec.build(p, raw_dir, base=build_dataset(p["base"], p["base_params"], raw_dir))
    else:
        out = spec.build(p, raw_dir)
    upstream_counts = {s: int(len(out[f"y_{s}"])) for s in ("train", "test") if f"y_{s}" in out}

    splits = [s for s in ("train", "test") if f"x_{s}" in out]
    for s in splits:
        x, y = out[f"x_{s}"], out[f"y_{s}"]
        if x.dtype != np.uint8 or y.dtype != np.int64 or len(x) != len(y):
            raise AssertionError(f"{source}: bad {s} arrays {x.dtype}{x.shape} {y.dtype}{y.shape}")
        if p["classes"] is not None:
            present = set(np.unique(y).tolist())
            absent = [c for c in p["classes"] if c not in present]
            if absent and s == "test":
                raise DataError(f"param 'classes' of source {source!r}: label {absent[0]} does "
                                f"not occur in its data")
            keep = np.isin(y, p["classes"])
            x, y = x[keep], y[keep]
        limit = p[f"max_{s}"]
        if limit is not None and limit < len(y):
            keep = stratified_indices(y, limit, p["seed"], s)
            x, y = x[keep], y[keep]
        out[f"x_{s}"], out[f"y_{s}"] = np.ascontiguousarray(x), np.ascontiguousarray(y)

    meta = {
        "source": source,
        "description": spec.description,
        "licence": spec.licence,
        "params": {k: v for k, v in p.items()},
        "class_names": list(spec.class_names),
        "splits": splits,
        "upstream_counts": upstream_counts,
        "counts": {s: int(len(out[f"y_{s}"])) for s in splits},
        "label_counts": {s: _counts(out[f"y_{s}"]) for s in splits},
        "shapes": {f"x_{s}": list(out[f"x_{s}"].shape) for s in splits},
        "dtypes": {"x": "uint8", "y": "int64"},
        "subset_method": SUBSET_METHOD,
        **({"role": spec.role} if spec.role else {}),
        **out.pop("meta"),
    }
    meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    log.info("built %s: %s in %.1f s", source, meta["counts"], meta["build_seconds"])
    return {**out, "meta": meta}
