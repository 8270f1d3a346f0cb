"""``holdout``: a seeded, class-stratified hold-out of a labelled source's training split.

A benchmark that tunes hyper-parameters (``benchmarks.<b>.id_val``) needs ID validation images the
network never trained on: its ID set becomes the ``fit`` side (the training split without the
held-out rows, the test split untouched) and its ID-validation part the ``val`` side (the held-out
rows, as a test split).  Both sides draw the same rows (:func:`grood.data.subset.stratified_indices`
on the training labels, stream ``train``), so they never overlap and always add up to the base's
training split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .subset import stratified_indices

#: source-specific parameters (``base`` is required)
HOLDOUT_PARAMS = {"base_params": {}, "fraction": None, "n": None, "keep": "fit"}
KEEP = ("fit", "val")


def held_out_count(p: dict, n_train: int) -> int:
    """How many training rows the hold-out takes: ``n``, or ``round(fraction · n_train)``."""
    n = int(p["n"]) if p["n"] is not None else int(round(float(p["fraction"]) * n_train))
    if not 1 <= n < n_train:
        raise DataError(f"source 'holdout': holding out {n} of the base's {n_train} training images leaves "
                        f"{'none' if n >= n_train else 'all'} to {'train on' if n >= n_train else 'validate on'}; "
                        f"choose a fraction in (0, 1) or 1 <= n < {n_train}")
    return n


def check_holdout(p: dict, source: str) -> None:
    if (p["fraction"] is None) == (p["n"] is None):
        raise DataError(f"source {source!r} takes exactly one of 'fraction' (share of the training split) "
                        f"and 'n' (count), got fraction={p['fraction']!r}, n={p['n']!r}")
    if p["fraction"] is not None and not (isinstance(p["fraction"], (int, float)) and 0 < p["fraction"] < 1):
        raise DataError(f"param 'fraction' of source {source!r} must lie in (0, 1), got {p['fraction']!r}")
    if p["n"] is not None and (isinstance(p["n"], bool) or not isinstance(p["n"], int) or p["n"] < 1):
        raise DataError(f"param 'n' of source {source!r} must be a positive integer, got {p['n']!r}")
    if p["keep"] not in KEEP:
        raise DataError(f"param 'keep' of source {source!r} must be one of {list(KEEP)}, got {p['keep']!r}")


def build_holdout(p: dict, raw_dir: Path, base: dict) -> dict[str, Any]:
    """``base``: the base source's arrays (:func:`grood.data.build.build_dataset` of ``p["base"]``)."""
    if "x_train" not in base or len(base["x_train"]) == 0:
        raise DataError(f"source 'holdout': base {p['base']!r} has no training split to hold rows out of")
    y = base["y_train"]
    n_val = held_out_count(p, len(y))
    val = stratified_indices(y, n_val, p["seed"], "train")
    fit = np.setdiff1d(np.arange(len(y)), val)
    bm = base["meta"]
    meta = {"upstream": bm.get("upstream", []), "licence": f"{bm['licence']} (the base source {p['base']!r}'s)",
            "class_names": bm.get("class_names", []),
            "base": {"source": p["base"], "params": p["base_params"], "n_train": int(len(y))},
            "held_out": int(n_val),
            "notes": f"{n_val} of the {len(y)} training images of {p['base']!r} held out (class-stratified, "
                     f"seed {p['seed']}) as ID validation data for tuning; "
                     + ("this side: the remaining training images, and the base's test split"
                        if p["keep"] == "fit" else "this side: the held-out images, as the test split")}
    if p["keep"] == "fit":
        return {"x_train": base["x_train"][fit], "y_train": y[fit], "x_test": base["x_test"],
                "y_test": base["y_test"], "meta": meta}
    return {"x_test": base["x_train"][val], "y_test": y[val], "meta": meta}
