"""The at-a-glance figures: an AUROC heatmap (detectors × OOD sets) and near/far AUROC per seed.

Both read the long metrics table (``metrics.csv``: one row per seed, detector and OOD set, with its
``group``). AUROC is drawn on a −log10(1 − AUROC) scale, where 0.99 and 0.999 are as far apart as
0.9 and 0.99: on a linear scale every good detector would share one colour.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from grood.figures.style import (AUROC_TICKS, CMAP, GROUP_STYLE, auroc_axis, auroc_to_nines, save_figure,
                                 styled)

GROUPS = ("near", "far")


def detector_order(long: pd.DataFrame) -> list[str]:
    """Detectors by mean near-OOD AUROC, best first (then far, then name): the reading order."""
    means = long.groupby(["detector", "group"])["auroc"].mean().unstack()
    for g in GROUPS:
        if g not in means:
            means[g] = np.nan
    keyed = means.assign(_n=-means["near"].fillna(-1), _f=-means["far"].fillna(-1)).reset_index()
    return keyed.sort_values(["_n", "_f", "detector"])["detector"].tolist()


def heatmap_table(long: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Mean AUROC over seeds: rows detectors, columns the near sets, ``near mean``, the far sets,
    ``far mean`` (group means are per seed, then averaged: the tables' convention)."""
    order = order or detector_order(long)
    per_set = long.groupby(["detector", "ood"])["auroc"].mean().unstack()
    per_group = long.groupby(["seed", "detector", "group"])["auroc"].mean().groupby(["detector", "group"]).mean()
    cols = []
    table = pd.DataFrame(index=order)
    for g in GROUPS:
        sets = list(dict.fromkeys(long.loc[long["group"] == g, "ood"]))
        if not sets:
            continue
        for s in sets:
            table[s] = per_set[s]
        table[f"{g} mean"] = per_group.xs(g, level="group")
        cols += [*sets, f"{g} mean"]
    return table[cols]


def auroc_heatmap(long: pd.DataFrame, stem: str | Path, title: str = "", order: list[str] | None = None):
    """Detectors × OOD sets, mean AUROC over seeds in every cell; near and far grouped, each followed
    by its mean column. Returns the written paths (PNG, PDF)."""
    table = heatmap_table(long, order)
    n_seeds = long["seed"].nunique()
    values = table.to_numpy(dtype=float)
    nrows, ncols = values.shape
    with styled():
        fig, ax = plt.subplots(figsize=(1.0 + 0.82 * ncols, 1.3 + 0.36 * nrows))
        im = ax.imshow(auroc_to_nines(values), cmap=CMAP, vmin=0.0, vmax=4.0, aspect="auto")
        rgba = im.cmap(im.norm(auroc_to_nines(values)))
        for i in range(nrows):
            for j in range(ncols):
                v = values[i, j]
                if np.isnan(v):
                    continue
                lum = 0.2126 * rgba[i, j, 0] + 0.7152 * rgba[i, j, 1] + 0.0722 * rgba[i, j, 2]
                bold = table.columns[j].endswith(" mean")
                ax.text(j, i, f"{100 * v:.2f}", ha="center", va="center", fontsize=7.5,
                        color="black" if lum > 0.5 else "white", fontweight="bold" if bold else "normal")
        ax.set_xticks(range(ncols), [c.replace("_", " ") for c in table.columns], rotation=35, ha="right",
                      rotation_mode="anchor")
        ax.set_yticks(range(nrows), table.index)
        ax.tick_params(length=0)
        ax.grid(False)
        for s in ax.spines.values():
            s.set_visible(False)
        # white rules between the near block, its mean, the far block and its mean
        for j, c in enumerate(table.columns[:-1]):
            if c.endswith(" mean") or table.columns[j + 1].endswith(" mean"):
                ax.axvline(j + 0.5, color="white", lw=3)
        start = 0
        for j, c in enumerate(table.columns):
            if c.endswith(" mean"):
                g = c.split()[0]
                ax.annotate(f"{g}-OOD", xy=((start + j) / 2, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=9,
                            fontweight="bold")
                start = j + 1
        cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cbar.set_ticks(auroc_to_nines(AUROC_TICKS), labels=[f"{t:g}" for t in AUROC_TICKS])
        cbar.set_label("AUROC (scale: −log10(1 − AUROC))")
        cbar.outline.set_visible(False)
        ax.set_title((title + "\n" if title else "") + f"AUROC (%), mean over {n_seeds} seed(s)", pad=20)
        return save_figure(fig, stem)


def near_far_chart(long: pd.DataFrame, stem: str | Path, title: str = "", order: list[str] | None = None):
    """Per detector, near- and far-OOD mean AUROC of every seed (small open markers), their mean
    (filled) and ± one standard deviation over seeds (bar). Returns the written paths."""
    order = order or detector_order(long)
    per_seed = long.groupby(["seed", "detector", "group"])["auroc"].mean().reset_index()
    n_seeds = per_seed["seed"].nunique()
    groups = [g for g in GROUPS if g in set(per_seed["group"])]
    with styled():
        fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.36 * len(order)))
        offsets = {"near": -0.17, "far": 0.17} if len(groups) == 2 else {groups[0]: 0.0}
        for g in groups:
            st = GROUP_STYLE[g]
            sub = per_seed[per_seed["group"] == g]
            for i, det in enumerate(order):
                v = sub.loc[sub["detector"] == det, "auroc"].to_numpy()
                if len(v) == 0:
                    continue
                y = i + offsets[g]
                ax.scatter(v, np.full(len(v), y), s=16, facecolors="none", edgecolors=st["color"],
                           marker=st["marker"], linewidths=0.8, zorder=3)
                std = v.std(ddof=1) if len(v) > 1 else 0.0
                lo, hi = np.clip([v.mean() - std, v.mean() + std], None, 1 - 1e-5)
                ax.plot([lo, hi], [y, y], color=st["color"], lw=1.4, zorder=2)
                ax.scatter([v.mean()], [y], s=34, color=st["color"], marker=st["marker"], zorder=4,
                           label=f"{g}-OOD" if i == 0 else None)
        auroc_axis(ax, "x")
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_xlim(left=max(0.0, min(0.5, per_seed["auroc"].min() - 0.02)), right=0.99995)
        ax.grid(axis="y", alpha=0)
        ax.set_xlabel("AUROC (scale: −log10(1 − AUROC); farther right = better)")
        ax.scatter([], [], s=16, facecolors="none", edgecolors="grey", marker="o", label="one seed")
        ax.plot([], [], color="grey", lw=1.4, label="mean ± std")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), handletextpad=0.3, borderaxespad=0.2)
        ax.set_title((f"{title}: " if title else "") + f"near/far mean AUROC over {n_seeds} seed(s)",
                     loc="left")
        return save_figure(fig, stem)
