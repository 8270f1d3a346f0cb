"""Sampling uncertainty of the OOD metrics: bootstrap intervals, paired tests, the mean over seeds.

The metrics and their conventions are :mod:`grood.evaluation.metrics`'s (ID scores higher; ``auroc``,
``aupr_in``, ``aupr_out``, ``fpr95_id``, ``fpr95_ood``, ties exact).  Three questions, one machinery:

**How sure is one number?**  :func:`bootstrap_metrics` resamples the test samples of one training
seed, stratified: the ID test set and each OOD set are resampled separately, with replacement, at
their own sizes (the ID/OOD proportions are fixed by the benchmark's design, not sampled).  The 95%
interval is the *percentile* interval of the bootstrap replicates (:func:`percentile_interval`).
Percentile, not BCa: measured on two Gaussians at AUROC 0.99 (docs/reading-results.md), BCa lifts the
coverage from 92.4% to 93.9% at 300 + 200 samples but changes nothing at this project's sizes (97.3%
against 97.0% at 10,000 + 5,000), while its acceleration constant needs a jackknife that is
unreliable for FPR95, a quantile-type statistic.

**Is detector A really behind the best?**  :func:`paired_vs_best`: a *paired bootstrap of the
difference* (not DeLong's test).  Every detector is resampled with the *same* drawn sample indices,
so a replicate's difference AUROC(A) − AUROC(best) cancels the test-set noise the detectors share;
the difference's 95% percentile interval holding 0 means ``tied_with_best``.  The bootstrap rather
than DeLong because one machinery then serves every metric (DeLong is AUROC-only), the near/far means
(a mean of AUROCs over OOD sets that share the ID set, whose covariance DeLong would need derived
anew) and the mean over seeds below, with the same tie handling and no normality assumption; for
AUROC both estimate the same variance of the difference (DeLong's is its closed form), so at these
sizes they differ only in the interval's shape.  The near/far means are resampled like the sets:
one ID draw and one draw of each OOD set per replicate, the same draws for every detector, and the
replicate's mean is the mean of its per-set values (:attr:`Bootstrap.sets` holds the groups too).

**How sure is a mean over training seeds?**  :func:`combine_seeds`: the per-seed bootstraps use the
same resampling seed, so, the test sets being the same for every training seed, they draw the same
sample indices and replicate ``r`` of every seed sees the same resampled test set.  The variance of
the seed mean is then estimated as the seeds' spread (sample variance of the per-seed estimates / S,
which holds the seed-to-seed variation) plus the bootstrap variance of the replicate-wise seed mean
(the test-set sampling variation, which does *not* average out over seeds because every seed is
scored on the same test set); the interval is mean ± t·√V with Welch–Satterthwaite's degrees of
freedom (S − 1 when the seeds' spread dominates, → ∞ when the sampling part does).  Defensible
because it names both sources and lets neither hide the other; conservative because the seed-specific
part of the sampling noise is counted in both terms.  A two-level bootstrap (resample the seeds,
then the samples) was rejected: with 3 seeds there are 10 distinct seed multisets and the resampled
spread is biased low by (S − 1)/S.  What 3 seeds can tell: whether the seed-to-seed variation is
small against the sampling variation (then ν is large and the interval is nearly the bootstrap's)
or not; what they cannot: the seed variance itself with any precision (2 degrees of freedom: its 95%
interval spans about 0.27× to 39× the estimate, hence t₂ = 4.30 in the worst case), nor the shape of
the distribution over seeds.  With one seed the interval is the percentile interval (sampling only).
Measured with 3 simulated seeds scoring one shared test set (``tests/unit/test_uncertainty.py``): coverage
0.945–0.958 whether the seeds differ not at all or three times as much as the samples do, where the
samples-only interval falls to 0.66 and a t-interval on the seeds alone to 0.69.

**Cost.**  A resample costs O(n), not a sort: the pooled ID+OOD scores of one (detector, OOD set) are
sorted once (their distinct values); a replicate is then a vector of multiplicities over those values
(the counts of the drawn indices), and every metric is read from integer cumulative sums in the
fixed sorted order: AUROC is the count-weighted Mann–Whitney statistic with ties counted ½ (exact in
integers), FPR95 the first threshold whose cumulative count reaches 95%, AUPR the step-wise average
precision of scikit-learn's ``average_precision_score``.  Every resampled value equals the metric
recomputed on the materialised resample (``tests/unit/test_uncertainty.py``).  Replicates run in blocks
vectorised over resamples, bounded in memory (:data:`BLOCK_BYTES`), in buffers reused from block to
block.  Measured (bench case 10, ``python -m benchmarks.bench --cases 10``): 38× faster than
scikit-learn's ``roc_auc_score`` per materialised resample, 53× for all five metrics; about 0.4 s of
CPU per (seed, detector, OOD set) for 2000 resamples of all five metrics at 10,000 + 5,000–10,000
scores.  Default resamples :data:`N_RESAMPLES` = 2000 rather than the issue's minimum of 1000: the
Monte-Carlo error of a percentile endpoint is ≈ 0.06 bootstrap SDs at 2000 against 0.085 at 1000
(3% against 4.3% of the half-width), which is what decides a tie whose interval ends near 0; 1000
halves the cost where a job must be short.

**Determinism.**  Draws come from ``SeedSequence(seed, spawn_key=…)`` streams: one for the ID set,
one per OOD set *name*, so a set's draws do not change when sets or detectors are added or removed,
nor with the block size.  Inputs and outputs are numpy arrays (a :class:`Bootstrap` holds them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from grood.evaluation.metrics import METRICS

#: bootstrap resamples by default (≥ 1000 is what the percentile interval needs; the workflow's
#: ``uncertainty.n_resamples`` defaults to it)
N_RESAMPLES = 1000
#: the intervals' coverage by default
LEVEL = 0.95
#: the working memory one block of resamples may take (drawn indices and per-value buffers)
BLOCK_BYTES = 8 << 20
#: the name a single OOD array gets (and the stream its draws come from)
DEFAULT_OOD = "ood"
#: the interval method in words, for captions
CI_METHOD_SHORT = "percentile bootstrap over test samples (ID and each OOD set resampled separately)"
CI_METHOD = f"95% {CI_METHOD_SHORT}, {N_RESAMPLES} seeded resamples"
SEED_METHOD = ("mean over seeds ± t·√(seed variance/S + bootstrap variance of the seed mean), "
               "Welch–Satterthwaite degrees of freedom")
PAIRED_METHOD = "paired bootstrap of the difference to the best detector (same resamples for all detectors)"

_FPR_LEVEL = 0.95  # the TPR at which both FPR95 conventions are read (as grood.evaluation.metrics)
_TOL = 1e-12  # grood.evaluation.metrics.fpr_at_tpr's tolerance on that level


# --------------------------------------------------------------------------------------- checking


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_level(level) -> float:
    if not (isinstance(level, (float, int, np.floating)) and 0.0 < float(level) < 1.0):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def _check_scores(name: str, x) -> np.ndarray:
    """Finite, non-empty float64 scores, shaped (detectors, samples)."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2:
        raise ValueError(f"{name} must be 1-D (samples) or 2-D (detectors × samples), got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} is empty: a metric needs at least one sample of each set (shape {v.shape})")
    bad = int((~np.isfinite(v)).sum())
    if bad:
        raise ValueError(f"{name} holds {bad} NaN/inf value(s)")
    return v


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if not metrics or unknown:
        raise ValueError(f"metrics must be a non-empty subset of {METRICS}, got {metrics!r}")
    return metrics


# ------------------------------------------------------------------------------------------ draws


def _generator(seed: int, ood_set: str | None) -> np.random.Generator:
    """The ID stream (``ood_set`` None) or an OOD set's, keyed by its name."""
    key = (0,) if ood_set is None else (1, *ood_set.encode("utf-8"))  # the whole name: no collisions
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def index_blocks(n: int, n_resamples: int, seed: int, ood_set: str | None,
                 block_size: int) -> Iterator[np.ndarray]:
    """Drawn sample indices, ``(block, n)`` int64 arrays, ``n_resamples`` rows in all.

    Rows are the same whatever ``block_size`` (one generator, drawn in order).
    """
    g = _generator(seed, ood_set)
    for start in range(0, n_resamples, block_size):
        yield g.integers(0, n, size=(min(block_size, n_resamples - start), n))


def resample_indices(n: int, n_resamples: int, seed: int = 0, ood_set: str | None = None) -> np.ndarray:
    """All ``(n_resamples, n)`` indices the bootstrap draws for the ID set (``ood_set`` None) or for
    the OOD set of that name: what :func:`bootstrap_metrics` resamples, to materialise a resample."""
    n = _check_positive_int("n", n)
    n_resamples = _check_positive_int("n_resamples", n_resamples)
    return next(index_blocks(n, n_resamples, _check_seed(seed), ood_set, n_resamples))


# ---------------------------------------------------------------------------------------- kernel


class _Sorted:
    """One score vector sorted once (descending, stable), with each sample's tie counts."""

    def __init__(self, x: np.ndarray):
        self.order = np.argsort(-x, kind="stable")
        self.desc = x[self.order]
        self.n = len(x)
        asc = -self.desc
        self.tied = bool(np.any(self.desc[1:] == self.desc[:-1]))
        # per sorted sample: how many samples score ≥ it (ties included) and > it
        self.ge = np.searchsorted(asc, asc, side="right") if self.tied else np.arange(1, self.n + 1)
        self.gt = np.searchsorted(asc, asc, side="left") if self.tied else np.arange(self.n)

    def count_ge(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(-self.desc, -values, side="right")

    def count_gt(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(-self.desc, -values, side="left")


class _Pair:
    """One detector's ID scores against one OOD set, placed once: where each OOD sample falls among
    the sorted ID samples and each ID sample among the sorted OOD samples."""

    def __init__(self, a: _Sorted, b: _Sorted):
        self.a, self.b = a, b
        self.a_gt_at_b = a.count_gt(b.desc)  # per sorted OOD sample: #ID above it
        a_ge_at_b = a.count_ge(b.desc)
        self.cross_tied = bool(np.any(a_ge_at_b != self.a_gt_at_b))
        self.a_ge_at_b = a_ge_at_b if self.cross_tied else self.a_gt_at_b
        self.b_ge_at_a = b.count_ge(a.desc)  # per sorted ID sample: #OOD at or above it


def _prefix(mult: np.ndarray, order: np.ndarray, out: np.ndarray, sorted_out: np.ndarray) -> np.ndarray:
    """``out[:, 1:]`` = cumulative multiplicities in sorted order (``out[:, 0]`` = 0); the sorted
    multiplicities go to ``sorted_out``.  Both are views of the caller's reused buffers."""
    np.take(mult, order, axis=1, out=sorted_out)
    out[:, 0] = 0
    np.cumsum(sorted_out, axis=1, out=out[:, 1:])
    return out


def _first_reaching(cum: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per row of a non-decreasing ``cum``, the first index whose value reaches ``m[row]``: a binary
    search per row (O(log n), where a comparison of the whole row would read it twice)."""
    return np.fromiter((np.searchsorted(row, t, side="left") for row, t in zip(cum, m)), np.int64, len(cum))


class _Workspace:
    """Buffers for blocks of up to ``rows`` resamples of up to ``n_a`` ID and ``n_b`` OOD samples,
    reused from block to block and pair to pair: fresh multi-MB temporaries would each pay their
    page faults (glibc returns freed large blocks to the system), which measured up to 6× the
    arithmetic."""

    def __init__(self, rows: int, n_a: int, n_b: int):
        self.rows, self.n_a, self.n_b = rows, n_a, n_b
        # counts in int64 (exact; numpy's integer cumsum is ~10x faster than its float one), the
        # precisions in float64
        self.ma = np.empty((rows, n_a), dtype=np.int64)
        self.ca = np.empty((rows, n_a + 1), dtype=np.int64)
        self.mb = np.empty((rows, n_b), dtype=np.int64)
        self.cb = np.empty((rows, n_b + 1), dtype=np.int64)
        self.ib = np.empty((rows, max(n_a, n_b)), dtype=np.int64)
        self.ib2 = np.empty((rows, max(n_a, n_b)), dtype=np.int64)
        self.fl = np.empty((rows, max(n_a, n_b)))

    def fits(self, rows: int, n_a: int, n_b: int) -> bool:
        return rows <= self.rows and n_a <= self.n_a and n_b <= self.n_b

    def id_side(self, a: _Sorted, mult_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ID multiplicities and their prefix sums ``(rows, n_a)``, ``(rows, n_a + 1)``."""
        rows = len(mult_a)
        ma, ca = self.ma[:rows, : a.n], self.ca[:rows, : a.n + 1]
        return ma, _prefix(mult_a, a.order, ca, ma)

    def metrics(self, pair: _Pair, ma: np.ndarray, ca: np.ndarray, mult_b: np.ndarray,
                metrics: Sequence[str], p_id: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every metric of each resample row, from the ID side's sorted multiplicities ``ma`` and prefix
        sums ``ca`` and the OOD multiplicities ``mult_b`` (original sample order).

        Counted per sample in sorted order, never over the pooled values: AUROC = Σ_OOD m·(#ID above +
        ½ #ID tied) / (W_a W_b), an integer numerator; AUPR-In = Σ_ID m·#ID≥s / #≥s over W_a (the
        precision at each ID sample's score, ties included: scikit-learn's step-wise average
        precision), AUPR-Out the same on the OOD side with ≤; FPR95 at the first threshold (in each
        convention's order) whose positive count reaches m = ⌈0.95·W⌉ with the 1e-12 tolerance of
        :func:`grood.evaluation.metrics.fpr_at_tpr` (the ID-side threshold ``p_id``: its sorted ID
        position per row, shared by every OOD set).
        """
        a, b = pair.a, pair.b
        rows, n_a, n_b = len(ma), a.n, b.n
        mb, cb = self.mb[:rows, :n_b], self.cb[:rows, : n_b + 1]
        _prefix(mult_b, b.order, cb, mb)
        w_a, w_b = ca[:, -1].astype(np.float64), cb[:, -1].astype(np.float64)
        r = np.arange(rows)
        a_gt = self.ib[:rows, :n_b]
        np.take(ca, pair.a_gt_at_b, axis=1, out=a_gt)  # #ID > each OOD sample, per resample
        out: dict[str, np.ndarray] = {}
        if "auroc" in metrics:
            num = 2 * _dot(mb, a_gt)
            if pair.cross_tied:
                a_ge = self.ib2[:rows, :n_b]
                np.take(ca, pair.a_ge_at_b, axis=1, out=a_ge)
                num = _dot(mb, a_gt) + _dot(mb, a_ge)
            out["auroc"] = num / (2.0 * w_a * w_b)
        if "fpr95_id" in metrics:  # highest threshold keeping ≥ 95% ID: a sorted ID sample's score
            out["fpr95_id"] = cb[r, pair.b_ge_at_a[p_id]] / w_b
        if "fpr95_ood" in metrics:  # lowest threshold catching ≥ 95% OOD: #OOD ≤ t = W_b − #OOD > t
            q = np.fromiter((np.searchsorted(row, t, side="right") - 1
                             for row, t in zip(cb, cb[:, -1] - _min_counts(cb[:, -1]))), np.int64, rows)
            out["fpr95_ood"] = (w_a - a_gt[r, q]) / w_a
        if "aupr_in" in metrics:
            id_ge = ca[:, a.ge] if a.tied else ca[:, 1:]
            both = self.ib2[:rows, :n_a]
            np.take(cb, pair.b_ge_at_a, axis=1, out=both)
            np.add(both, id_ge, out=both)
            np.maximum(both, 1, out=both)
            prec = self.fl[:rows, :n_a]
            np.divide(id_ge, both, out=prec)
            out["aupr_in"] = _dot(prec, ma) / w_a
        if "aupr_out" in metrics:  # OOD positive: ≤ each OOD sample's score
            ood_gt = cb[:, b.gt] if b.tied else cb[:, :-1]
            ood_le = self.ib2[:rows, :n_b]
            np.subtract(cb[:, -1:], ood_gt, out=ood_le)
            both = a_gt  # reused (read last): #ID ≤ s = W_a − #ID > s, plus #OOD ≤ s
            np.subtract(ca[:, -1:], a_gt, out=both)
            np.add(both, ood_le, out=both)
            np.maximum(both, 1, out=both)
            prec = self.fl[:rows, :n_b]
            np.divide(ood_le, both, out=prec)
            out["aupr_out"] = _dot(prec, mb) / w_b
        return {name: out[name] for name in metrics}


def _id_thresholds(ca: np.ndarray) -> np.ndarray:
    """Per row, the sorted ID position of the FPR95-ID threshold: the first sample at which the
    cumulative ID count reaches ⌈0.95·W_a⌉ (its score is the threshold, ties kept together)."""
    return _first_reaching(ca[:, 1:], _min_counts(ca[:, -1]))


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise dot products (einsum: no temporary)."""
    return np.einsum("ij,ij->i", x, y)


@functools.lru_cache(maxsize=256)
def _min_count(n: int) -> int:
    """The least count ``m`` with ``m / n >= 0.95 - 1e-12`` in float64, as grood.evaluation.metrics compares."""
    m = int(np.ceil((_FPR_LEVEL - _TOL) * n))
    while m > 0 and (m - 1) / n >= _FPR_LEVEL - _TOL:
        m -= 1
    while m / n < _FPR_LEVEL - _TOL:
        m += 1
    return m


def _min_counts(n: np.ndarray) -> np.ndarray:
    """:func:`_min_count` of every row's size (a bootstrap's rows share one size: computed once)."""
    n = np.asarray(n).astype(np.int64)
    if n.min() == n.max():
        return np.full(len(n), _min_count(int(n[0])), dtype=np.int64)
    sizes, inverse = np.unique(n, return_inverse=True)
    return np.array([_min_count(int(v)) for v in sizes], dtype=np.int64)[inverse.ravel()]


def _multiplicities(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` samples is drawn in each row of ``idx`` ``(rows, n)`` (int64): computed
    once per set and block, shared by every detector and training seed."""
    rows = len(idx)
    flat = idx + (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * n).reshape(rows, n)


def _kernel(a: np.ndarray, b: np.ndarray, mult_a: np.ndarray, mult_b: np.ndarray,
            metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """The metrics of weighted samples: row ``r`` weighs ID sample i by ``mult_a[r, i]`` and OOD
    sample j by ``mult_b[r, j]`` (original order)."""
    pair = _Pair(_Sorted(a), _Sorted(b))
    work = _Workspace(len(mult_a), len(a), len(b))
    ma, ca = work.id_side(pair.a, mult_a)
    return work.metrics(pair, ma, ca, mult_b, metrics, _id_thresholds(ca) if "fpr95_id" in metrics else None)


def from_counts(id_counts: np.ndarray, ood_counts: np.ndarray,
                metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """The metrics of weighted samples: ``id_counts``/``ood_counts`` ``(rows, k)`` are the multiplicities
    of k distinct pooled score values in *descending* order, the thresholds' order (a column may be
    zero on both sides).

    O(k) per row, no sort: integer cumulative sums over the fixed order.  Equal to
    :func:`grood.evaluation.metrics.ood_metrics` on the samples the counts describe (ties exact;
    AUROC's numerator is an integer).
    """
    wa = np.ascontiguousarray(np.atleast_2d(id_counts), dtype=np.int64)
    wb = np.ascontiguousarray(np.atleast_2d(ood_counts), dtype=np.int64)
    if wa.shape != wb.shape or wa.ndim != 2:
        raise ValueError(f"id_counts and ood_counts must be (rows, k) alike, got {wa.shape} and {wb.shape}")
    if (wa < 0).any() or (wb < 0).any():
        raise ValueError("counts must be non-negative")
    if (wa.sum(1) == 0).any() or (wb.sum(1) == 0).any():
        raise ValueError("every row needs at least one ID and one OOD sample")
    metrics = _check_metrics(metrics)
    values = np.arange(wa.shape[1], 0, -1, dtype=np.float64)  # descending, as the columns
    return _kernel(values, values, wa, wb, metrics)


def resampled_metrics(id_scores, ood_scores, id_idx, ood_idx,
                      metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """The metrics of given resamples, O(n) each: row ``r`` is the sample ``id_scores[id_idx[r]]``
    against ``ood_scores[ood_idx[r]]``.  The kernel of :func:`bootstrap_metrics`, for one detector."""
    a = _check_scores("id_scores", id_scores)
    b = _check_scores("ood_scores", ood_scores)
    if len(a) != 1 or len(b) != 1:
        raise ValueError("resampled_metrics takes one detector's 1-D id_scores and ood_scores")
    id_idx, ood_idx = np.atleast_2d(id_idx).astype(np.int64), np.atleast_2d(ood_idx).astype(np.int64)
    if len(id_idx) != len(ood_idx):
        raise ValueError(f"id_idx and ood_idx must hold as many resamples, got {len(id_idx)} and {len(ood_idx)}")
    for name, idx, n in (("id_idx", id_idx, a.shape[1]), ("ood_idx", ood_idx, b.shape[1])):
        if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{name} must hold indices in [0, {n}), at least one per resample")
    return _kernel(a[0], b[0], _multiplicities(id_idx, a.shape[1]), _multiplicities(ood_idx, b.shape[1]),
                   _check_metrics(metrics))


# ------------------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Bootstrap:
    """One training seed's bootstrap: ``estimates[m]`` ``(detectors, sets)`` and ``replicates[m]``
    ``(detectors, sets, n_resamples)`` for each metric ``m``; ``sets`` are the OOD sets in input order,
    then the groups (means over their sets, replicate by replicate)."""

    sets: tuple[str, ...]
    metrics: tuple[str, ...]
    estimates: dict[str, np.ndarray]
    replicates: dict[str, np.ndarray]
    n_resamples: int
    seed: int

    def take(self, rows) -> "Bootstrap":
        """The bootstrap of the detector rows ``rows`` (e.g. one training seed's, from a bootstrap of
        every seed's detectors stacked: the draws are shared, so the slices pair)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Bootstrap(self.sets, self.metrics, {m: v[rows] for m, v in self.estimates.items()},
                         {m: v[rows] for m, v in self.replicates.items()}, self.n_resamples, self.seed)

    def intervals(self, level: float = LEVEL) -> dict[str, np.ndarray]:
        """``{m, m_ci_low, m_ci_high}`` for every metric, ``(detectors, sets)`` arrays: the columns a
        metrics table takes (percentile intervals)."""
        out = {}
        for m in self.metrics:
            low, high = percentile_interval(self.replicates[m], level)
            out.update({m: self.estimates[m], f"{m}_ci_low": low, f"{m}_ci_high": high})
        return out

    def paired(self, metric: str = "auroc", level: float = LEVEL,
               higher_is_better: bool = True) -> dict[str, np.ndarray]:
        """:func:`paired_vs_best` on every set/group: ``best`` ``(sets,)``, the rest ``(detectors, sets)``."""
        if metric not in self.metrics:
            raise ValueError(f"metric {metric!r} is not among the bootstrapped {self.metrics}")
        parts = [paired_vs_best(self.estimates[metric][:, j], self.replicates[metric][:, j], level,
                                higher_is_better) for j in range(len(self.sets))]
        return {key: np.stack([p[key] for p in parts], axis=-1) for key in parts[0]}


def _ood_sets(ood_scores, n_detectors: int) -> dict[str, np.ndarray]:
    if not isinstance(ood_scores, Mapping):
        ood_scores = {DEFAULT_OOD: ood_scores}
    if not ood_scores:
        raise ValueError("ood_scores is empty: give at least one OOD set")
    sets = {}
    for name, x in ood_scores.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"ood_scores keys must be OOD set names (non-empty strings), got {name!r}")
        v = _check_scores(f"ood_scores[{name!r}]", x)
        if len(v) != n_detectors:
            raise ValueError(f"ood_scores[{name!r}] holds {len(v)} detector row(s), id_scores {n_detectors}")
        sets[name] = v
    return sets


def _groups(groups: Mapping[str, Sequence[str]] | None, sets: Sequence[str]) -> dict[str, list[int]]:
    out = {}
    for g, members in (groups or {}).items():
        members = [members] if isinstance(members, str) else list(members)
        if g in sets:
            raise ValueError(f"groups: {g!r} is also an OOD set's name")
        missing = [s for s in members if s not in sets]
        if not members or missing:
            raise ValueError(f"groups[{g!r}] must name OOD sets of ood_scores {list(sets)}, got {members}")
        out[g] = [list(sets).index(s) for s in members]
    return out


def default_block_size(n_id: int, n_oods: Sequence[int], n_resamples: int) -> int:
    """Resamples per block so that one block's drawn indices, multiplicities and working buffers stay
    within :data:`BLOCK_BYTES` (a few resamples at 10,000s of scores: larger blocks fall out of the
    cache; at 100s of scores, hundreds of resamples per vectorised call)."""
    n_max = max(n_id, *n_oods)
    per_resample = 8 * (2 * (n_id + sum(n_oods)) + 2 * n_id + 5 * n_max)  # draws, counts; buffers
    return int(max(1, min(n_resamples, BLOCK_BYTES // per_resample)))


def bootstrap_metrics(id_scores, ood_scores, *, groups: Mapping[str, Sequence[str]] | None = None,
                      n_resamples: int = N_RESAMPLES, seed: int = 0, metrics: Sequence[str] = METRICS,
                      block_size: int | None = None, threads: int = 1) -> Bootstrap:
    """Stratified bootstrap of every metric, for several detectors scored on the same samples.

    ``id_scores``: ``(n_id,)`` or ``(detectors, n_id)``; ``ood_scores``: one such array, or a mapping
    OOD set name → ``(n_ood,)`` / ``(detectors, n_ood)`` (rows in the same detector order).  Per
    replicate the ID set and each OOD set are resampled once, with replacement, at their own sizes,
    and the same drawn indices serve every detector (paired) and every set's ID side (so ``groups``,
    e.g. ``{"near": [...], "far": [...]}``, get the replicate-wise mean of their sets' values).
    "Detectors" may be any score vectors on the same samples: the rows of several training seeds'
    detectors, stacked, share the draws as the workflow's seeds do.  Deterministic for a given
    ``seed``; ``block_size`` (default: :func:`default_block_size`) only bounds memory and ``threads``
    (detectors split between threads: numpy releases the GIL) only the wall time; neither changes
    any result.
    """
    a = _check_scores("id_scores", id_scores)
    sets = _ood_sets(ood_scores, len(a))
    names = list(sets)
    grouped = _groups(groups, names)
    n_resamples = _check_positive_int("n_resamples", n_resamples)
    seed = _check_seed(seed)
    metrics = _check_metrics(metrics)
    n_id, n_oods = a.shape[1], [v.shape[1] for v in sets.values()]
    block_size = (default_block_size(n_id, n_oods, n_resamples) if block_size is None
                  else _check_positive_int("block_size", block_size))
    n_det, n_sets = len(a), len(names)
    threads = _check_positive_int("threads", threads)
    if threads > 1 and n_det > 1:
        from concurrent.futures import ThreadPoolExecutor

        chunks = np.array_split(np.arange(n_det), min(threads, n_det))
        with ThreadPoolExecutor(len(chunks)) as pool:
            parts = list(pool.map(lambda rows: bootstrap_metrics(
                a[rows], {s: v[rows] for s, v in sets.items()}, groups=groups, n_resamples=n_resamples, seed=seed,
                metrics=metrics, block_size=block_size), chunks))
        return Bootstrap(parts[0].sets, metrics, {m: np.concatenate([p.estimates[m] for p in parts]) for m in metrics},
                         {m: np.concatenate([p.replicates[m] for p in parts]) for m in metrics}, n_resamples, seed)
    sorted_a = [_Sorted(a[d]) for d in range(n_det)]
    pairs = [[_Pair(sorted_a[d], _Sorted(sets[s][d])) for s in names] for d in range(n_det)]
    est = {m: np.empty((n_det, n_sets + len(grouped))) for m in metrics}
    reps = {m: np.empty((n_det, n_sets + len(grouped), n_resamples)) for m in metrics}
    fpr_id = "fpr95_id" in metrics
    ones_a = np.ones((1, n_id), dtype=np.int64)
    one_work = _Workspace(1, n_id, max(n_oods))
    work = _Workspace(min(block_size, n_resamples), n_id, max(n_oods))
    for d in range(n_det):  # the estimates: every sample once
        ma, ca = one_work.id_side(sorted_a[d], ones_a)
        p_id = _id_thresholds(ca) if fpr_id else None
        for j, n in enumerate(n_oods):
            for m, v in one_work.metrics(pairs[d][j], ma, ca, np.ones((1, n), dtype=np.int64), metrics,
                                         p_id).items():
                est[m][d, j] = v[0]
    id_blocks = index_blocks(n_id, n_resamples, seed, None, block_size)
    ood_blocks = [index_blocks(n, n_resamples, seed, s, block_size) for s, n in zip(names, n_oods)]
    start = 0
    for id_idx in id_blocks:
        mult_a = _multiplicities(id_idx, n_id)
        mult_b = [_multiplicities(next(it), n) for it, n in zip(ood_blocks, n_oods)]
        stop = start + len(id_idx)
        for d in range(n_det):
            ma, ca = work.id_side(sorted_a[d], mult_a)
            p_id = _id_thresholds(ca) if fpr_id else None
            for j in range(n_sets):
                for m, v in work.metrics(pairs[d][j], ma, ca, mult_b[j], metrics, p_id).items():
                    reps[m][d, j, start:stop] = v
        start = stop
    for g, (gname, members) in enumerate(grouped.items()):
        for m in metrics:
            est[m][:, n_sets + g] = est[m][:, members].mean(1)
            reps[m][:, n_sets + g] = reps[m][:, members].mean(1)
    return Bootstrap(tuple(names) + tuple(grouped), metrics, est, reps, n_resamples, seed)


def metrics_with_ci(id_scores, ood_scores, *, n_resamples: int = N_RESAMPLES, seed: int = 0,
                    level: float = LEVEL, ood_set: str = DEFAULT_OOD) -> dict[str, float]:
    """One detector, one OOD set: ``{auroc, auroc_ci_low, auroc_ci_high, aupr_in, …}`` as floats
    (a metrics-table row).  ``ood_set`` names the OOD set's draw stream (its name in the benchmark)."""
    for name, x in (("id_scores", id_scores), ("ood_scores", ood_scores)):
        if np.ndim(x) != 1:
            raise ValueError(f"{name} must be one detector's 1-D scores, got shape {np.shape(x)}")
    b = bootstrap_metrics(id_scores, {ood_set: ood_scores}, n_resamples=n_resamples, seed=seed)
    return {k: float(v[0, 0]) for k, v in b.intervals(level).items()}


# ------------------------------------------------------------------------------------- intervals


def percentile_interval(replicates, level: float = LEVEL, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The (1 − level)/2 and (1 + level)/2 quantiles of the replicates along ``axis`` (linear
    interpolation between order statistics, numpy's default)."""
    level = _check_level(level)
    r = np.asarray(replicates, dtype=np.float64)
    if r.size == 0 or r.shape[axis] == 0:
        raise ValueError("replicates is empty")
    if not np.isfinite(r).all():
        raise ValueError("replicates hold NaN/inf value(s)")
    low, high = np.quantile(r, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return low, high


def combine_seeds(estimates, replicates, level: float = LEVEL,
                  bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over training seeds and its interval, accounting for seeds and samples.

    ``estimates``: ``(seeds, …)`` per-seed values; ``replicates``: ``(seeds, …, n_resamples)`` their
    bootstrap replicates, drawn with the same resampling seed for every training seed (replicate r of
    every seed on the same resampled test set).  V = var_seeds(estimates)/S + var_r(mean over seeds of
    replicate r); interval mean ± t_ν·√V, ν = V² / ((var_seeds/S)² / (S − 1)) (Welch–Satterthwaite,
    the bootstrap part counted as exactly known).  One seed: the percentile interval.  ``bounds``
    clips the interval (e.g. (0, 1) for a metric).  Returns (mean, low, high).
    """
    from scipy import stats

    level = _check_level(level)
    est = np.asarray(estimates, dtype=np.float64)
    reps = np.asarray(replicates, dtype=np.float64)
    if est.ndim == 0 or est.shape[0] == 0:
        raise ValueError("estimates is empty: give one value per seed (seeds on the first axis)")
    if reps.shape[:-1] != est.shape or reps.shape[-1] < 2:
        raise ValueError(f"replicates must be shaped estimates' shape {est.shape} + (n_resamples ≥ 2,), "
                         f"got {reps.shape}")
    if not (np.isfinite(est).all() and np.isfinite(reps).all()):
        raise ValueError("estimates/replicates hold NaN/inf value(s)")
    n_seeds = est.shape[0]
    mean = est.mean(0)
    if n_seeds == 1:
        low, high = percentile_interval(reps[0], level)
    else:
        v_seed = est.var(0, ddof=1) / n_seeds
        v_sample = reps.mean(0).var(-1, ddof=1)
        v = v_seed + v_sample
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(v_seed > 0, v**2 / (v_seed**2 / (n_seeds - 1)), np.inf)
        half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(v)
        low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return mean, low, high


def paired_vs_best(estimates, replicates, level: float = LEVEL,
                   higher_is_better: bool = True) -> dict[str, np.ndarray]:
    """Each detector against the best one, by a paired bootstrap of the difference.

    ``estimates``: ``(detectors,)`` or, over training seeds, ``(seeds, detectors)``; ``replicates``:
    the same + ``(n_resamples,)``, drawn with the same indices for every detector (and seed).  The best
    is the highest (``higher_is_better``; else lowest) estimate, of the mean over seeds; ties go to the
    first.  ``diff`` = detector − best, its interval the percentile interval of the replicate-wise
    differences (one seed) or :func:`combine_seeds` of the per-seed differences (several: paired by
    seed too, as post-hoc detectors share each seed's network).  ``tied_with_best`` holds where the
    interval holds 0 (the best itself included: its difference is 0 on every replicate).  Choosing the
    best on the same data favours it slightly (winner's curse), so ties are, if anything, under-reported
    for the runner-up only by that selection effect.
    """
    est = np.asarray(estimates, dtype=np.float64)
    reps = np.asarray(replicates, dtype=np.float64)
    if est.ndim not in (1, 2) or est.shape[-1] == 0:
        raise ValueError(f"estimates must be (detectors,) or (seeds, detectors), got shape {est.shape}")
    if reps.shape[:-1] != est.shape:
        raise ValueError(f"replicates must be shaped estimates' shape {est.shape} + (n_resamples,), got {reps.shape}")
    per_seed = est if est.ndim == 2 else est[None]
    reps = reps if est.ndim == 2 else reps[None]
    score = per_seed.mean(0)
    best = int(np.argmax(score) if higher_is_better else np.argmin(score))
    diff_est = per_seed - per_seed[:, best : best + 1]
    diff_reps = reps - reps[:, best : best + 1]
    diff, low, high = combine_seeds(diff_est, diff_reps, level)
    return {"best": np.array(best), "diff": diff, "diff_low": low, "diff_high": high,
            "tied_with_best": (low <= 0.0) & (high >= 0.0)}


def seed_summary(boots: Sequence[Bootstrap], level: float = LEVEL, paired_metric: str = "auroc",
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> dict[str, np.ndarray]:
    """The summary over training seeds of per-seed :class:`Bootstrap`s (same detectors, sets and
    resampling seed): ``{m}_mean``, ``{m}_ci_low``, ``{m}_ci_high`` (:func:`combine_seeds`) for every
    metric and the paired comparison on ``paired_metric`` (``diff_to_best``, ``diff_ci_low``,
    ``diff_ci_high``, ``tied_with_best``), ``(detectors, sets)`` arrays, plus ``best`` ``(sets,)``."""
    if not boots:
        raise ValueError("boots is empty: give one Bootstrap per training seed")
    first = boots[0]
    for b in boots[1:]:
        if (b.sets, b.metrics, b.n_resamples, b.seed) != (first.sets, first.metrics, first.n_resamples, first.seed):
            raise ValueError("boots differ in sets, metrics, n_resamples or resampling seed: "
                             f"{(b.sets, b.metrics, b.n_resamples, b.seed)} vs "
                             f"{(first.sets, first.metrics, first.n_resamples, first.seed)}")
    if paired_metric not in first.metrics:
        raise ValueError(f"paired_metric {paired_metric!r} is not among the bootstrapped {first.metrics}")
    out: dict[str, np.ndarray] = {}
    for m in first.metrics:
        est = np.stack([b.estimates[m] for b in boots])
        reps = np.stack([b.replicates[m] for b in boots])
        out[f"{m}_mean"], out[f"{m}_ci_low"], out[f"{m}_ci_high"] = combine_seeds(est, reps, level, bounds)
    est = np.stack([b.estimates[paired_metric] for b in boots])
    reps = np.stack([b.replicates[paired_metric] for b in boots])
    higher = not paired_metric.startswith("fpr")
    parts = [paired_vs_best(est[:, :, j], reps[:, :, j], level, higher) for j in range(len(first.sets))]
    for key, name in (("diff", "diff_to_best"), ("diff_low", "diff_ci_low"), ("diff_high", "diff_ci_high"),
                      ("tied_with_best", "tied_with_best"), ("best", "best")):
        out[name] = np.stack([p[key] for p in parts], axis=-1)
    return out
