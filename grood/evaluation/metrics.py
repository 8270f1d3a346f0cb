"""OOD metrics with their conventions named (docs/methods.md §6). ID scores are higher by convention.

``fpr95_id``: share of OOD accepted when 95% of ID is kept (GradNorm, kNN papers).
``fpr95_ood``: share of ID rejected when 95% of OOD is caught (OpenOOD, pytorch-ood).
``aupr_in``/``aupr_out``: average precision (step-wise, as scikit-learn's ``average_precision_score``)
with ID resp. OOD as the positive class.  Ties are handled exactly: thresholds are the distinct scores.
"""

from __future__ import annotations

import numpy as np

METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95_id", "fpr95_ood")


def _check(id_scores: np.ndarray, ood_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(id_scores, dtype=np.float64).ravel()
    b = np.asarray(ood_scores, dtype=np.float64).ravel()
    for name, v in (("ID scores", a), ("OOD scores", b)):
        if len(v) == 0:
            raise ValueError(f"{name} are empty: a metric needs at least one sample of each set")
        if not np.isfinite(v).all():
            raise FloatingPointError(f"{name} hold {int((~np.isfinite(v)).sum())} NaN/inf value(s)")
    return a, b


def roc_points(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TPR and FPR at every distinct threshold, in decreasing threshold order (``score ≥ t`` = positive)."""
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_pos = scores[order], is_pos[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(is_pos)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return tp / len(pos), fp / len(neg), scores[last_of_tie]


def auroc(id_scores, ood_scores) -> float:
    """P(ID score > OOD score) + ½ P(tie): the Mann–Whitney statistic, via ranks."""
    a, b = _check(id_scores, ood_scores)
    tpr, fpr, _ = roc_points(a, b)
    tpr, fpr = np.r_[0.0, tpr], np.r_[0.0, fpr]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    tpr, fpr, _ = roc_points(pos, neg)
    tp, fp = tpr * len(pos), fpr * len(neg)
    precision = tp / (tp + fp)
    recall = tpr
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr_at_tpr(pos: np.ndarray, neg: np.ndarray, level: float = 0.95) -> float:
    """FPR at the first (highest) threshold whose TPR reaches ``level``."""
    tpr, fpr, _ = roc_points(pos, neg)
    return float(fpr[np.argmax(tpr >= level - 1e-12)])


def threshold_at_tpr(id_scores, level: float = 0.95) -> float:
    """The highest threshold ``t`` that keeps at least ``level`` of the ID scores (``score ≥ t`` = ID):
    the operating point ``fpr95_id`` is read at, usable on new inputs."""
    a = np.sort(np.asarray(id_scores, dtype=np.float64).ravel())[::-1]
    if len(a) == 0 or not np.isfinite(a).all():
        raise ValueError("a threshold needs at least one ID score, all finite")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"the share of ID kept must lie in (0, 1], got {level}")
    k = max(1, int(np.ceil(len(a) * (level - 1e-12))))
    return float(a[k - 1])


def ood_metrics(id_scores, ood_scores) -> dict[str, float]:
    a, b = _check(id_scores, ood_scores)
    return {
        "auroc": auroc(a, b),
        "aupr_in": average_precision(a, b),
        "aupr_out": average_precision(-b, -a),
        "fpr95_id": fpr_at_tpr(a, b),
        "fpr95_ood": fpr_at_tpr(-b, -a),
    }
