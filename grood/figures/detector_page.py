"""One page per detector: ID test scores against each OOD set, with the 95%-TPR threshold, and ROC
curves of every OOD set.

Scores of different detectors live on very different scales (a softmax piled up just below 1,
distances from 1e-20 to 1). Each histogram's score axis is the one of four — linear, log(score),
−log(−score) or −log(top − score) — on which the ID test scores spread widest (interquartile range
over the drawn range), always oriented so that right means "more in-distribution"; a log axis is
taken only where it spreads ID at least twice as wide as the linear one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from grood.figures.style import ID_COLOUR, OOD_COLOUR, save_figure, series_style, styled
from grood.evaluation.metrics import auroc, fpr_at_tpr, roc_points, threshold_at_tpr

LOG_GAIN = 2.0  # a log axis must spread the ID scores this many times wider than the linear one


@dataclass(frozen=True)
class ScoreAxis:
    """How scores map to the drawn x (increasing in the score): ``linear``; ``log``: log10(s) for
    positive scores; ``neglog``: −log10(−s) for negative ones; ``toplog``: −log10(top − s) for scores
    piled up below their maximum ``top``. ``lo``/``hi``: the drawn range of x."""

    kind: str
    top: float = 0.0
    lo: float = 0.0
    hi: float = 1.0

    def x(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if self.kind == "log":
            return np.log10(np.maximum(s, 1e-300))
        if self.kind == "neglog":
            return -np.log10(np.maximum(-s, 1e-300))
        if self.kind == "toplog":
            return -np.log10(np.maximum(self.top - s, 1e-300))
        return s

    def label(self) -> str:
        text = {"linear": "score", "log": "log10(score)", "neglog": "−log10(−score)",
                "toplog": f"−log10({self.top:.4g} − score)"}[self.kind]
        return f"{text}  →  more ID"


def _fit_range(axis: ScoreAxis, all_scores: np.ndarray) -> ScoreAxis:
    lo, hi = np.percentile(axis.x(all_scores), [0.5, 99.5])
    if hi - lo <= 0:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.03 * (hi - lo)
    return ScoreAxis(axis.kind, axis.top, float(lo - pad), float(hi + pad))


def choose_axis(id_scores: np.ndarray, *others: np.ndarray) -> ScoreAxis:
    """The axis on which the ID scores spread widest (see the module doc)."""
    a = np.asarray(id_scores, dtype=np.float64).ravel()
    s = np.concatenate([a, *(np.asarray(o, dtype=np.float64).ravel() for o in others)])
    candidates = [ScoreAxis("linear")]
    if (s > 0).all():
        candidates.append(ScoreAxis("log"))
    if (s < 0).all():
        candidates.append(ScoreAxis("neglog"))
    gaps = s.max() - s
    if (gaps > 0).any():  # scores equal to the maximum sit half the smallest gap below ``top``
        candidates.append(ScoreAxis("toplog", top=float(s.max() + gaps[gaps > 0].min() / 2)))

    def spread(axis: ScoreAxis) -> float:
        q25, q75 = np.percentile(axis.x(a), [25, 75])
        return (q75 - q25) / (axis.hi - axis.lo)

    fitted = [_fit_range(c, s) for c in candidates]
    best = max(fitted[1:], key=spread, default=fitted[0])
    simpler = [f for f in fitted[1:] if f.kind in ("log", "neglog")]  # easier to read than toplog
    if best.kind == "toplog" and simpler and spread(simpler[0]) >= 0.8 * spread(best):
        best = simpler[0]
    return best if spread(best) >= LOG_GAIN * spread(fitted[0]) else fitted[0]


def detector_page(detector: str, id_scores: np.ndarray, ood_scores: dict[str, np.ndarray],
                  groups: dict[str, str], stem: str | Path, title: str = "", level: float = 0.95):
    """Histograms of ID test vs each OOD set (threshold keeping ``level`` of ID drawn) and ROC curves.

    ``ood_scores``: OOD set → scores, drawn in this order; ``groups``: OOD set → ``near``/``far``.
    Returns the written paths (PNG, PDF).
    """
    names = list(ood_scores)
    n = len(names)
    ncols = min(3, n)
    nrows = int(np.ceil(n / ncols))
    threshold = threshold_at_tpr(id_scores, level)
    with styled():
        height = max(4.4, 2.6 * nrows + 1.5)
        fig = plt.figure(figsize=(3.3 * ncols + 4.4, height))
        grid = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1.0] * ncols + [1.45], wspace=0.28,
                                hspace=0.62, left=0.05, right=0.99, top=1 - 0.85 / height, bottom=1.35 / height)
        hist_axes = [fig.add_subplot(grid[i // ncols, i % ncols]) for i in range(n)]
        roc_ax = fig.add_subplot(grid[:, ncols])
        axis = choose_axis(id_scores, *ood_scores.values())  # one axis for the page: panels compare
        for i, (ax, name) in enumerate(zip(hist_axes, names)):
            _histogram(ax, axis, id_scores, ood_scores[name], threshold)
            fpr = fpr_at_tpr(np.asarray(id_scores, float), np.asarray(ood_scores[name], float), level)
            ax.set_title(f"{name} ({groups.get(name, '?')})\nAUROC {100 * auroc(id_scores, ood_scores[name]):.2f}"
                         f" · FPR{round(100 * level)} {100 * fpr:.1f}%", fontsize=9)
            if i % ncols == 0:
                ax.set_ylabel("density")
        _roc(roc_ax, id_scores, ood_scores, groups, level)
        handles = [plt.Rectangle((0, 0), 1, 1, fc=ID_COLOUR, alpha=0.45, ec=ID_COLOUR),
                   plt.Rectangle((0, 0), 1, 1, fc=OOD_COLOUR, alpha=0.45, ec=OOD_COLOUR, ls="--"),
                   plt.Line2D([], [], color="black", ls="--", lw=1.2)]
        fig.legend(handles, [f"ID test (n={len(id_scores)})", "OOD set",
                             f"threshold: {round(100 * level)}% of ID test kept (score ≥ {threshold:.4g})"],
                   loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
        fig.suptitle((f"{title}: " if title else "") + f"detector {detector}", x=0.01, y=0.995, ha="left",
                     va="top", fontweight="bold")
        return save_figure(fig, stem, tight=False)


def _histogram(ax, axis: ScoreAxis, id_scores, ood, threshold):
    bins = np.linspace(axis.lo, axis.hi, 51)
    for scores, colour, ls in ((id_scores, ID_COLOUR, "-"), (ood, OOD_COLOUR, "--")):
        x = np.clip(axis.x(scores), axis.lo, axis.hi)  # outliers pile into the edge bins, not dropped
        ax.hist(x, bins, density=True, histtype="stepfilled", color=colour, alpha=0.45, lw=0)
        ax.hist(x, bins, density=True, histtype="step", color=colour, lw=1.2, ls=ls)
    t = axis.x(np.array([threshold]))[0]
    if axis.lo <= t <= axis.hi:
        ax.axvline(t, color="black", ls="--", lw=1.2)
    ax.set_xlim(axis.lo, axis.hi)
    ax.set_xlabel(axis.label(), fontsize=8)
    ax.grid(axis="y", alpha=0)


def _roc(ax, id_scores, ood_scores, groups, level):
    floor = 1.0
    for i, (name, ood) in enumerate(ood_scores.items()):
        tpr, fpr, _ = roc_points(np.asarray(id_scores, float), np.asarray(ood, float))
        floor = min(floor, 1.0 / len(ood))
        keep = fpr > 0  # a log axis cannot show FPR = 0; the curve starts at the first accepted OOD
        st = series_style(i)
        xs, ys = np.r_[fpr[keep]], np.r_[tpr[keep]]
        marks = np.unique(np.searchsorted(xs, np.logspace(np.log10(max(xs.min(), 1e-6)), 0, 7))) if len(xs) else []
        ax.plot(xs, ys, color=st["color"], ls=st["linestyle"], lw=1.5, marker=st["marker"],
                markevery=[int(m) for m in marks if m < len(xs)], markersize=5,
                label=f"{name} ({groups.get(name, '?')}): {100 * auroc(id_scores, ood):.2f}")
    ax.axhline(level, color="black", ls=":", lw=0.9)
    ticks = [t for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if abs(t - level) > 0.07] + [level]
    ax.set_yticks(sorted(ticks))  # the operating point gets its own tick, no text over the curves
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1.0)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("FPR: share of OOD accepted (log scale)")
    ax.set_ylabel("TPR: share of ID test kept")
    ax.set_title("ROC per OOD set (legend: AUROC %)", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=7.5, ncol=1 if len(ood_scores) < 4 else 2,
              columnspacing=0.8, handlelength=2.6)
