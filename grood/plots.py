"""Figures: score histograms (ID vs each OOD set) and ROC curves, one grid per benchmark and seed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from grood.metrics import auroc, roc_points  # noqa: E402
from grood.results import ScoreSet  # noqa: E402


def _grid(n: int, ncols: int = 4, size: float = 3.2):
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, 0.85 * size * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def score_histograms(score_sets: list[ScoreSet], path: str, title: str = "") -> None:
    """One panel per (detector, OOD set): ID test scores against that set's."""
    panels = [(s, ood) for s in score_sets for ood in s.ood_scores]
    fig, axes = _grid(len(panels), ncols=len(score_sets[0].ood_scores))
    for ax, (s, ood) in zip(axes, panels):
        a, b = s.id_scores, s.ood_scores[ood]
        lo, hi = np.percentile(np.r_[a, b], [0.5, 99.5])
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 50)
        ax.hist(np.clip(a, lo, hi), bins, alpha=0.55, density=True, label="ID test", color="tab:blue")
        ax.hist(np.clip(b, lo, hi), bins, alpha=0.55, density=True, label=ood, color="tab:red")
        ax.set_title(f"{s.detector} · {ood}\nAUROC {100 * auroc(a, b):.1f}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roc_curves(score_sets: list[ScoreSet], path: str, title: str = "") -> None:
    """One panel per detector, a curve per OOD set (ID positive, x = share of OOD accepted)."""
    fig, axes = _grid(len(score_sets), ncols=min(4, len(score_sets)))
    for ax, s in zip(axes, score_sets):
        for ood, b in s.ood_scores.items():
            tpr, fpr, _ = roc_points(s.id_scores, b)
            ax.plot(np.r_[0, fpr], np.r_[0, tpr], lw=1.2, label=f"{ood} ({100 * auroc(s.id_scores, b):.1f})")
        ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
        ax.axhline(0.95, ls="--", c="grey", lw=0.6)
        ax.set_title(s.detector, fontsize=9)
        ax.set_xlabel("FPR (OOD accepted)", fontsize=7)
        ax.set_ylabel("TPR (ID kept)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
