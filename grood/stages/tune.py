"""Stage `tune`: choose one swept detector's grid point on validation data, for one seed.

Every point's validation AUROC is its ID-validation scores against each OOD-validation set's, the mean
over the sets; the best point is chosen (ties: the first in grid order, :func:`grood.evaluation.tuning.choose`)
and ``tuning.csv`` lists every point, the choice marked.  The stage never reads a test part, and
refuses validation sets that are test sets (the config check refuses them first, with their overlaps).
"""

from __future__ import annotations

import logging

import numpy as np

from grood.evaluation.tuning import ID_VAL
from grood.storage import atomic_path

log = logging.getLogger("grood")

#: tuning.csv's columns (after one ``val_auroc_<set>`` per OOD-validation set)
COLUMNS = ("seed", "detector", "order", "point", "val_auroc", "chosen")


def tune_stage(detector: str, seed: int, scores: list[dict], points: list[str], ood_val: list[str],
               test_sets: list[str], out_csv) -> str:
    """Write ``out_csv`` for ``detector``'s grid ``points`` (in grid order) and return the chosen one.

    ``scores``: one dict per score file with ``point``, ``part`` (``id_val`` or an OOD-validation set)
    and ``path``.  ``test_sets``: the benchmark's OOD test sets, which no validation part may be."""
    import pandas as pd

    from grood.detectors.base import check_finite
    from grood.evaluation.metrics import auroc
    from grood.evaluation.tuning import choose

    clash = sorted(set(ood_val) & set(test_sets) | ({ID_VAL} & set(test_sets)))
    if clash:
        raise ValueError(f"tuning {detector}: the validation set(s) {clash} are also OOD test sets "
                         f"({sorted(test_sets)}): choosing on them would look at the test data; validate on "
                         f"sets that no benchmark tests on")
    if not ood_val:
        raise ValueError(f"tuning {detector}: no OOD-validation set to choose on")
    by = {(s["point"], s["part"]): s["path"] for s in scores}
    missing = [(p, part) for p in points for part in [ID_VAL, *ood_val] if (p, part) not in by]
    if missing:
        raise ValueError(f"tuning {detector}: no validation scores for {missing}")
    rows = []
    for order, point in enumerate(points):
        id_val = check_finite(by[(point, ID_VAL)], np.load(by[(point, ID_VAL)]))
        per_set = {v: auroc(id_val, check_finite(by[(point, v)], np.load(by[(point, v)]))) for v in ood_val}
        rows.append({"seed": int(seed), "detector": detector, "order": order, "point": point,
                     "val_auroc": float(np.mean(list(per_set.values()))),
                     **{f"val_auroc_{v}": a for v, a in per_set.items()}})
    best = choose([r["val_auroc"] for r in rows])
    table = pd.DataFrame(rows).assign(chosen=lambda d: d["order"] == best)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    log.info("tuning %s (seed %s): %s chosen of %d points, validation AUROC %.4f", detector, seed,
             points[best], len(points), rows[best]["val_auroc"])
    return points[best]


def chosen_point(tuning_csv) -> str:
    """The grid point a ``tuning.csv`` marks as chosen."""
    import pandas as pd

    table = pd.read_csv(tuning_csv)
    chosen = table.loc[table["chosen"], "point"].tolist()
    if len(chosen) != 1:
        raise ValueError(f"{tuning_csv} marks {len(chosen)} grid points as chosen; re-run its tune job")
    return chosen[0]


def copy_chosen(src, dst) -> None:
    """The chosen grid point's file (fitted detector or scores) as the swept detector's own: a
    byte-for-byte copy, written atomically (the in-process rules tuned_detector and tuned_scores)."""
    import shutil

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    log.info("the chosen grid point's %s → %s", src, dst)
