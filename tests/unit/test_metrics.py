"""Every metric against scikit-learn, on random and on heavily tied scores, plus known answers."""

import numpy as np
import pytest
from sklearn import metrics as skm

from grood.evaluation.metrics import ood_metrics


def reference(id_scores, ood_scores):
    y = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    s = np.r_[id_scores, ood_scores]
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    fpr_o, tpr_o, _ = skm.roc_curve(1 - y, -s, drop_intermediate=False)
    return {
        "auroc": skm.roc_auc_score(y, s),
        "aupr_in": skm.average_precision_score(y, s),
        "aupr_out": skm.average_precision_score(1 - y, -s),
        "fpr95_id": fpr[np.argmax(tpr >= 0.95)],
        "fpr95_ood": fpr_o[np.argmax(tpr_o >= 0.95)],
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_sklearn(seed, ties):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, rng.integers(50, 400))
    b = rng.normal(0.0, 1.5, rng.integers(50, 400))
    if ties:
        a, b = np.round(a), np.round(b)  # a handful of distinct values shared by both sets
    ours, ref = ood_metrics(a, b), reference(a, b)
    for k in ref:
        assert ours[k] == pytest.approx(ref[k], abs=1e-12), k


def test_known_answers():
    m = ood_metrics([3, 4, 5], [0, 1, 2])  # perfectly separated
    assert m == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95_id": 0.0, "fpr95_ood": 0.0}
    m = ood_metrics([0, 1, 2], [3, 4, 5])  # perfectly reversed
    assert m["auroc"] == 0.0 and m["fpr95_id"] == 1.0 and m["fpr95_ood"] == 1.0
    m = ood_metrics([1.0] * 4, [1.0] * 6)  # all tied: chance, everything accepted
    assert m["auroc"] == 0.5 and m["fpr95_id"] == 1.0 and m["aupr_in"] == pytest.approx(0.4)


def test_fpr95_conventions_differ():
    """OOD accepted at 95% ID kept vs ID rejected at 95% OOD caught: different numbers, both exact."""
    id_scores = np.r_[np.arange(95), [-10.0] * 5]  # 5% of ID look very OOD
    ood_scores = np.arange(-5, 15).astype(float)
    m = ood_metrics(id_scores, ood_scores)
    assert m["fpr95_id"] == pytest.approx(15 / 20)  # threshold 0 keeps 95 ID, accepts OOD 0..14
    ref = reference(id_scores, ood_scores)
    assert m["fpr95_ood"] == pytest.approx(ref["fpr95_ood"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_are_refused(bad):
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        ood_metrics([1.0, bad], [0.0])


def test_empty_set_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ood_metrics([], [0.0])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_threshold_at_tpr_is_the_point_fpr95_id_reads(seed, ties):
    """Accepting ``score ≥ t`` keeps ≥ 95% of ID and lets through exactly the fpr95_id share of OOD
    (scikit-learn's ROC as the reference); any higher score keeps less than 95%."""
    from grood.evaluation.metrics import threshold_at_tpr

    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, rng.integers(20, 300))
    b = rng.normal(0.0, 1.5, rng.integers(20, 300))
    if ties:
        a, b = np.round(a), np.round(b)
    t = threshold_at_tpr(a, 0.95)
    assert (a >= t).mean() >= 0.95 and (a > t).mean() < 0.95
    assert (b >= t).mean() == pytest.approx(reference(a, b)["fpr95_id"], abs=1e-12)


def test_threshold_at_tpr_bad_inputs():
    from grood.evaluation.metrics import threshold_at_tpr

    assert threshold_at_tpr([5.0, 1.0, 3.0], 1.0) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        threshold_at_tpr([])
    with pytest.raises(ValueError, match="share of ID"):
        threshold_at_tpr([1.0], 0.0)
