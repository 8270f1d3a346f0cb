"""Bootstrap intervals, paired tests and seed means (grood.evaluation.uncertainty).

Exactness: every resampled metric equals the metric recomputed on the materialised resample
(scikit-learn for AUROC and AUPR, grood.evaluation.metrics for both FPR95 conventions).  Coverage: two Gaussians
with a known AUROC.  Paired tests: identical detectors never differ, a known gap is found.
"""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn import metrics as skm

from grood.evaluation import uncertainty as U
from grood.evaluation.metrics import METRICS, fpr_at_tpr, ood_metrics


def scores(seed, n_id=None, n_ood=None, ties=False):
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, n_id or rng.integers(30, 300))
    b = rng.normal(0.0, 1.5, n_ood or rng.integers(30, 300))
    if ties:
        a, b = np.round(a), np.round(b)  # a handful of distinct values shared by both sets
    return a, b


def reference(a, b):
    """The metrics of one materialised sample: scikit-learn, and grood.evaluation.metrics for FPR95."""
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    s = np.r_[a, b]
    return {"auroc": skm.roc_auc_score(y, s), "aupr_in": skm.average_precision_score(y, s),
            "aupr_out": skm.average_precision_score(1 - y, -s),
            "fpr95_id": fpr_at_tpr(a, b), "fpr95_ood": fpr_at_tpr(-b, -a)}


# ------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("ties", [False, True])
def test_resampled_metrics_equal_the_metrics_of_the_materialised_resample(seed, ties):
    a, b = scores(seed, ties=ties)
    n_res = 25
    boot = U.bootstrap_metrics(a, {"x": b}, n_resamples=n_res, seed=seed, block_size=7)  # blocks of 7 rows
    ia = U.resample_indices(len(a), n_res, seed)
    ib = U.resample_indices(len(b), n_res, seed, "x")
    direct = U.resampled_metrics(a, b, np.tile(ia, (2, 1)), np.tile(ib, (2, 1)))  # one block of 50 rows
    for r in range(n_res):
        ref = reference(a[ia[r]], b[ib[r]])
        for m in METRICS:
            assert boot.replicates[m][0, 0, r] == pytest.approx(ref[m], abs=1e-12), (m, r)
            assert direct[m][r] == direct[m][n_res + r] == boot.replicates[m][0, 0, r]
        # FPR95 is a ratio of the same integers: bit-equal
        assert boot.replicates["fpr95_id"][0, 0, r] == ref["fpr95_id"]
        assert boot.replicates["fpr95_ood"][0, 0, r] == ref["fpr95_ood"]


@pytest.mark.parametrize("ties", [False, True])
def test_estimates_equal_grood_metrics(ties):
    a, b = scores(7, ties=ties)
    boot = U.bootstrap_metrics(a, b, n_resamples=3)
    ref = ood_metrics(a, b)
    for m in METRICS:
        assert boot.estimates[m][0, 0] == pytest.approx(ref[m], abs=1e-12)


def test_edge_resamples_all_tied_and_separated():
    """All scores tied (AUROC ½, everything accepted) and perfect separation, through the kernel."""
    tied = U.resampled_metrics(np.ones(5), np.ones(3), [[0, 0, 1, 2, 4]], [[2, 2, 2]])
    assert tied["auroc"][0] == 0.5 and tied["fpr95_id"][0] == 1.0 and tied["fpr95_ood"][0] == 1.0
    assert tied["aupr_in"][0] == pytest.approx(5 / 8)
    sep = U.resampled_metrics([3.0, 4.0, 5.0], [0.0, 1.0], [[0, 1, 2]], [[1, 1]])
    assert {m: float(v[0]) for m, v in sep.items()} == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0,
                                                        "fpr95_id": 0.0, "fpr95_ood": 0.0}


def test_from_counts_with_empty_columns_matches_the_weighted_sample():
    """Counts over distinct values (descending), some values drawn on neither side."""
    values = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    wa = np.array([[2, 0, 1, 0, 3, 0], [0, 0, 4, 1, 0, 0]])
    wb = np.array([[0, 0, 2, 0, 1, 1], [1, 0, 0, 2, 0, 0]])
    got = U.from_counts(wa, wb)
    for r in range(2):
        ref = reference(np.repeat(values, wa[r]), np.repeat(values, wb[r]))
        for m in METRICS:
            assert got[m][r] == pytest.approx(ref[m], abs=1e-12), (m, r)


# ---------------------------------------------------------------------------------- determinism


def test_deterministic_under_the_seed_and_independent_of_block_size():
    a, b = scores(3)
    one = U.bootstrap_metrics(a, b, n_resamples=60, seed=11, block_size=1)
    many = U.bootstrap_metrics(a, b, n_resamples=60, seed=11, block_size=17)
    again = U.bootstrap_metrics(a, b, n_resamples=60, seed=11)
    other = U.bootstrap_metrics(a, b, n_resamples=60, seed=12)
    for m in METRICS:
        assert np.array_equal(one.replicates[m], many.replicates[m])
        assert np.array_equal(one.replicates[m], again.replicates[m])
    assert not np.array_equal(one.replicates["auroc"], other.replicates["auroc"])


def test_a_sets_draws_do_not_depend_on_the_other_sets_or_detectors():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(1, 1, (2, 80)), rng.normal(0, 1, (2, 60)), rng.normal(0.5, 1, (2, 70))
    alone = U.bootstrap_metrics(a[1], {"b": b[1]}, n_resamples=40, seed=5)
    both = U.bootstrap_metrics(a, {"c": c, "b": b}, n_resamples=40, seed=5)
    assert both.sets == ("c", "b")
    for m in METRICS:
        assert np.array_equal(both.replicates[m][1, 1], alone.replicates[m][0, 0])
    row = U.metrics_with_ci(a[1], b[1], n_resamples=40, seed=5, ood_set="b")
    low, high = U.percentile_interval(alone.replicates["auroc"][0, 0])
    assert row["auroc_ci_low"] == low and row["auroc_ci_high"] == high
    assert set(row) == {f"{m}{s}" for m in METRICS for s in ("", "_ci_low", "_ci_high")}


def test_group_replicates_are_the_mean_of_their_sets():
    rng = np.random.default_rng(1)
    a = rng.normal(1, 1, (3, 90))
    oods = {s: rng.normal(0, 1, (3, n)) for s, n in (("n1", 50), ("n2", 70), ("f1", 40))}
    boot = U.bootstrap_metrics(a, oods, groups={"near": ["n1", "n2"], "far": ["f1"]}, n_resamples=30)
    assert boot.sets == ("n1", "n2", "f1", "near", "far")
    for m in METRICS:
        np.testing.assert_array_equal(boot.replicates[m][:, 3], boot.replicates[m][:, :2].mean(1))
        np.testing.assert_array_equal(boot.estimates[m][:, 4], boot.estimates[m][:, 2])
    cols = boot.intervals()
    assert cols["auroc_ci_low"].shape == (3, 5) and (cols["auroc_ci_low"] <= cols["auroc_ci_high"]).all()


# ------------------------------------------------------------------------------------- coverage


def coverage(n_reps, n_id, n_ood, delta, n_resamples=1000, seed0=0):
    """Share of percentile intervals holding the true AUROC Φ(Δ/√2) of N(Δ, 1) (ID) vs N(0, 1) (OOD)."""
    truth = norm.cdf(delta / np.sqrt(2))
    hits = 0
    for rep in range(n_reps):
        rng = np.random.default_rng([seed0, rep])
        a, b = rng.normal(delta, 1.0, n_id), rng.normal(0.0, 1.0, n_ood)
        boot = U.bootstrap_metrics(a, b, n_resamples=n_resamples, seed=rep, metrics=("auroc",))
        low, high = U.percentile_interval(boot.replicates["auroc"][0, 0])
        hits += low <= truth <= high
    return hits / n_reps


def test_coverage_of_the_auroc_interval():
    """400 seeded repetitions, 120 ID + 80 OOD, 1000 resamples each: 95% nominal (measured 0.9500)."""
    c = coverage(400, 120, 80, delta=1.0)
    print(f"coverage {c:.4f}")
    assert 0.92 <= c <= 0.98


@pytest.mark.slow
@pytest.mark.parametrize("delta, n_id, n_ood", [(1.0, 1000, 500), (0.3, 300, 200), (3.29, 300, 200)])
def test_coverage_of_the_auroc_interval_larger(delta, n_id, n_ood):
    """1000 repetitions at other separations (AUROC 0.58, 0.76, 0.99) and sizes."""
    c = coverage(1000, n_id, n_ood, delta, seed0=1)
    print(f"delta {delta} n {n_id}+{n_ood}: coverage {c:.4f}")
    assert 0.92 <= c <= 0.98


# ---------------------------------------------------------------------------------- paired tests


def test_identical_detectors_are_never_reported_different():
    rng = np.random.default_rng(2)
    a = rng.normal(1, 1, 200)
    oods = {"o1": rng.normal(0, 1, 150), "o2": rng.normal(0.5, 1, 120)}
    boot = U.bootstrap_metrics(np.stack([a, a]), {k: np.stack([v, v]) for k, v in oods.items()},
                               groups={"near": ["o1", "o2"]}, n_resamples=300, seed=1)
    p = boot.paired()
    assert p["tied_with_best"].all()
    assert (p["diff"] == 0).all() and (p["diff_low"] == 0).all() and (p["diff_high"] == 0).all()


def test_a_known_gap_is_found_and_an_equal_detector_is_tied():
    """Detector 0 is the signal plus a little noise, detector 1 the same plus much more (AUROC gap
    ≈ 0.08 at 400 + 300 samples: found); detector 2 the signal plus other noise of detector 0's size
    (the same true AUROC: tied with the best)."""
    rng = np.random.default_rng(3)
    sig_a, sig_b = rng.normal(1.2, 1, 400), rng.normal(0, 1, 300)
    noise_a, noise_b = rng.normal(0, 1, (2, 400)), rng.normal(0, 1, (2, 300))
    ida = np.stack([sig_a + 0.3 * noise_a[0], sig_a + 1.0 * noise_a[0], sig_a + 0.3 * noise_a[1]])
    oodb = np.stack([sig_b + 0.3 * noise_b[0], sig_b + 1.0 * noise_b[0], sig_b + 0.3 * noise_b[1]])
    boot = U.bootstrap_metrics(ida, {"o": oodb}, n_resamples=1000, seed=0, metrics=("auroc",))
    p = boot.paired()
    best = int(p["best"][0])
    assert best in (0, 2)
    assert p["diff"][1, 0] < -0.05 and p["diff_high"][1, 0] < 0 and not p["tied_with_best"][1, 0]
    assert p["tied_with_best"][0, 0] and p["tied_with_best"][2, 0] and abs(p["diff"][2 - best, 0]) < 0.02
    # the same draws for every detector: pairing makes the gap's interval narrower than either AUROC's
    low, high = U.percentile_interval(boot.replicates["auroc"][:, 0])
    assert p["diff_high"][1, 0] - p["diff_low"][1, 0] < (high - low)[0] + (high - low)[1]
    again = U.bootstrap_metrics(ida, {"o": oodb}, n_resamples=1000, seed=0, metrics=("auroc",)).paired()
    for k in p:
        np.testing.assert_array_equal(p[k], again[k])


def test_paired_over_seeds_uses_combine_seeds_on_the_differences():
    est = np.array([[0.90, 0.85], [0.92, 0.86], [0.91, 0.84]])  # (seeds, detectors)
    rng = np.random.default_rng(0)
    reps = est[..., None] + rng.normal(0, 0.005, (3, 2, 500))
    p = U.paired_vs_best(est, reps)
    assert int(p["best"]) == 0 and p["diff"][0] == 0 and p["tied_with_best"][0]
    d, lo, hi = U.combine_seeds(est[:, 1] - est[:, 0], reps[:, 1] - reps[:, 0])
    assert (p["diff"][1], p["diff_low"][1], p["diff_high"][1]) == (d, lo, hi)
    assert not p["tied_with_best"][1]
    lower = U.paired_vs_best(1 - est, 1 - reps, higher_is_better=False)  # e.g. FPR95: lower is better
    assert int(lower["best"]) == 0 and not lower["tied_with_best"][1]


# ------------------------------------------------------------------------------------ seed means


def test_combine_seeds_formula_and_limits():
    rng = np.random.default_rng(4)
    est = np.array([0.80, 0.84, 0.82])
    reps = est[:, None] + rng.normal(0, 0.01, (3, 400))
    mean, low, high = U.combine_seeds(est, reps)
    v_seed, v_samp = est.var(ddof=1) / 3, reps.mean(0).var(ddof=1)
    df = (v_seed + v_samp) ** 2 / (v_seed**2 / 2)
    from scipy.stats import t

    half = t.ppf(0.975, df) * np.sqrt(v_seed + v_samp)
    assert mean == pytest.approx(0.82) and (low, high) == pytest.approx((0.82 - half, 0.82 + half))
    assert 2 < df < 4  # the seeds' spread dominates here: close to t with 2 degrees of freedom
    # no spread over seeds: the sampling part alone, normal quantile
    same = np.full(3, 0.8)
    m2, l2, h2 = U.combine_seeds(same, same[:, None] + (reps - est[:, None]))
    assert h2 - m2 == pytest.approx(norm.ppf(0.975) * (reps - est[:, None]).mean(0).std(ddof=1))
    # one seed: the percentile interval
    m1, l1, h1 = U.combine_seeds(est[:1], reps[:1])
    assert (l1, h1) == U.percentile_interval(reps[0])
    # bounds clip a metric's interval
    _, _, hb = U.combine_seeds(np.array([0.999, 0.995, 0.99]), np.full((3, 50), 0.995), bounds=(0, 1))
    assert hb == 1.0


def test_seed_summary_of_three_seeds():
    rng = np.random.default_rng(5)
    boots = []
    for s in range(3):
        a = rng.normal(1, 1, (2, 150)) + np.array([[0.0], [-0.6]])  # detector 1 clearly worse
        boots.append(U.bootstrap_metrics(a, {"o": rng.normal(0, 1, (2, 100))}, groups={"near": ["o"]},
                                         n_resamples=200, seed=9))
    summ = U.seed_summary(boots)
    assert summ["auroc_mean"].shape == (2, 2) and summ["best"].tolist() == [0, 0]
    assert summ["tied_with_best"].tolist() == [[True, True], [False, False]]
    assert ((summ["auroc_ci_low"] <= summ["auroc_mean"]) & (summ["auroc_mean"] <= summ["auroc_ci_high"])).all()
    np.testing.assert_allclose(summ["auroc_mean"][:, 0], np.mean([b.estimates["auroc"][:, 0] for b in boots], 0))
    with pytest.raises(ValueError, match="resampling seed"):
        U.seed_summary([boots[0], U.bootstrap_metrics(np.ones(3), np.zeros(2), n_resamples=200, seed=1)])


def seed_coverage(n_reps, tau, n_id=300, n_ood=200, delta=1.0, rho=0.8, n_seeds=3, n_resamples=500):
    """Coverage of :func:`combine_seeds` for the mean over seeds of the AUROC, where every seed scores
    the same test samples (a latent share ``rho`` of each score is the sample's, shared by all seeds)
    and each seed's separation is Δ + τ·g (g ~ N(0, 1)): the target is E_g Φ((Δ + τg)/√2).  Also
    returns the coverage of the percentile interval of the seed mean alone (samples only)."""
    g = np.random.default_rng(99).normal(size=200_000)
    truth = norm.cdf((delta + tau * g) / np.sqrt(2)).mean()
    hits = hits_samples = 0
    for rep in range(n_reps):
        rng = np.random.default_rng([11, rep])
        za, zb = rng.normal(size=n_id), rng.normal(size=n_ood)
        est, reps = [], []
        for _ in range(n_seeds):
            d = delta + tau * rng.normal()
            a = d + np.sqrt(rho) * za + np.sqrt(1 - rho) * rng.normal(size=n_id)
            b = np.sqrt(rho) * zb + np.sqrt(1 - rho) * rng.normal(size=n_ood)
            boot = U.bootstrap_metrics(a, b, n_resamples=n_resamples, seed=rep, metrics=("auroc",))
            est.append(boot.estimates["auroc"][0, 0])
            reps.append(boot.replicates["auroc"][0, 0])
        _, low, high = U.combine_seeds(np.array(est), np.array(reps))
        hits += low <= truth <= high
        low, high = U.percentile_interval(np.mean(reps, 0))
        hits_samples += low <= truth <= high
    return hits / n_reps, hits_samples / n_reps


def test_coverage_of_the_seed_mean():
    """150 repetitions of 3 seeds with seed-to-seed variation (τ = 0.1): measured 0.960."""
    c, _ = seed_coverage(150, tau=0.1)
    print(f"seed-mean coverage {c:.4f}")
    assert 0.90 <= c <= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.0, 0.1, 0.3])
def test_coverage_of_the_seed_mean_larger(tau):
    """400 repetitions: 0.950 / 0.958 / 0.945 measured for τ = 0 / 0.1 / 0.3, where the samples-only
    interval falls to 0.943 / 0.892 / 0.660."""
    c, c_samples = seed_coverage(400, tau)
    print(f"tau {tau}: coverage {c:.4f}, samples only {c_samples:.4f}")
    assert 0.92 <= c <= 0.98
    if tau >= 0.3:
        assert c_samples < 0.8  # why the seeds' spread must enter the interval


# ----------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    ({"id_scores": []}, "id_scores is empty"),
    ({"ood_scores": {"x": []}}, r"ood_scores\['x'\] is empty"),
    ({"id_scores": [1.0, np.nan]}, "id_scores holds 1 NaN/inf"),
    ({"ood_scores": [0.0, np.inf]}, r"ood_scores\['ood'\] holds 1 NaN/inf"),
    ({"ood_scores": {}}, "ood_scores is empty"),
    ({"n_resamples": 0}, "n_resamples must be a positive integer"),
    ({"n_resamples": 2.5}, "n_resamples must be a positive integer"),
    ({"n_resamples": True}, "n_resamples must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"block_size": 0}, "block_size must be a positive integer"),
    ({"metrics": ("auc",)}, "metrics must be a non-empty subset"),
    ({"ood_scores": [[0.0, 1.0], [0.5, 0.2]]}, "holds 2 detector row"),
    ({"groups": {"near": ["nope"]}}, r"groups\['near'\] must name OOD sets"),
])
def test_bad_inputs_name_the_parameter(kwargs, match):
    args = {"id_scores": [1.0, 2.0, 3.0], "ood_scores": [0.0, 1.0]} | kwargs
    with pytest.raises(ValueError, match=match):
        U.bootstrap_metrics(args.pop("id_scores"), args.pop("ood_scores"), **args)


def test_bad_levels_and_replicates():
    with pytest.raises(ValueError, match="level must lie in"):
        U.percentile_interval(np.ones(10), level=1.0)
    with pytest.raises(ValueError, match="replicates hold NaN"):
        U.percentile_interval(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="replicates must be shaped"):
        U.combine_seeds(np.ones(3), np.ones((2, 10)))
    with pytest.raises(ValueError, match="n_resamples must be a positive integer"):
        U.resample_indices(5, 0)
    with pytest.raises(ValueError, match="ood_idx must hold indices"):
        U.resampled_metrics([1.0, 2.0], [0.0], [[0, 1]], [[1]])
    with pytest.raises(ValueError, match="one detector's 1-D scores"):
        U.metrics_with_ci(np.ones((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="not among the bootstrapped"):
        U.bootstrap_metrics([1.0, 2.0], [0.0], n_resamples=5, metrics=("auroc",)).paired("fpr95_id")


# -------------------------------------------------------------------------- the evaluate tables


def test_evaluate_adds_intervals_and_marks_ties(tmp_path):
    """evaluate's tables on two seeds of three detectors, two of them identical: every metric gains
    its interval (``low ≤ value ≤ high``) after the columns it had, the summary the paired test, and
    the two identical detectors are tied with each other (whichever is best)."""
    import json

    import pandas as pd

    from grood.stages.evaluate import evaluate_stage

    rng = np.random.default_rng(0)
    groups = {"near_set": "near", "far_set": "far"}
    scores, summaries = [], {}
    for seed in (0, 1):
        summaries[seed] = tmp_path / f"train{seed}.json"
        summaries[seed].write_text(json.dumps({"test_accuracy": 0.99}))
        base = {"test": rng.normal(1.5, 1, 300), "near_set": rng.normal(0, 1, 200), "far_set": rng.normal(-1, 1, 150)}
        for det, shift in (("a", 0.0), ("a_copy", 0.0), ("weak", -1.2)):
            for part, v in base.items():
                path = tmp_path / f"{seed}-{det}-{part}.npy"
                np.save(path, v + (shift if part == "test" else 0.0))
                scores.append({"seed": seed, "detector": det, "part": part, "path": str(path)})
    out = {k: str(tmp_path / f"{k}.x") for k in ("metrics_csv", "summary_csv", "table_md", "table_tex")}
    flags = {d: {"reconstruction": False, "uses_ood_data": False} for d in ("a", "a_copy", "weak")}
    evaluate_stage("b", scores, summaries, groups, flags, out,
                   uncertainty={"n_resamples": 200, "seed": 0, "level": 0.95}, threads=2)
    long, summ = pd.read_csv(out["metrics_csv"]), pd.read_csv(out["summary_csv"])
    old = ["seed", "detector", "ood", "group", "n_id", "n_ood", *METRICS, "id_accuracy", "reconstruction",
           "uses_ood_data"]
    assert list(long.columns[: len(old)]) == old  # the columns a run had keep their place
    for frame, value in ((long, "{m}"), (summ, "{m}_mean")):
        for m in METRICS:
            v = frame[value.format(m=m)]
            assert (frame[f"{m}_ci_low"] <= v + 1e-9).all() and (v <= frame[f"{m}_ci_high"] + 1e-9).all(), m
    by = summ.set_index(["detector", "ood"])
    for ood in ("near_set", "far_set", "near", "far"):
        assert by.loc[("a", ood), "tied_with_best"] and by.loc[("a_copy", ood), "tied_with_best"]
        assert not by.loc[("weak", ood), "tied_with_best"] and by.loc[("weak", ood), "best"] == "a"
    md = open(out["table_md"]).read()
    assert "Intervals: 95% percentile bootstrap" in md and "200 resamples, resampling seed 0" in md
    assert "paired bootstrap of the difference" in md and "**" in md and " ≈" in md
    assert "\\approx" in open(out["table_tex"]).read()
