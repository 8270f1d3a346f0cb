"""GROOD's method in one picture: where ID train, ID test and an OOD set lie in the penultimate
feature space and in GROOD's gradient space, with the class prototypes and the OOD prototype.

Both panels are 2-D PCA projections (scikit-learn, fitted on the ID training sample only, so every
other set is placed by the same linear map). Feature space: the points ``h`` with ``P_c`` and
``p_ood`` projected as they are. Gradient space: the points ``g(h)``, and each prototype mapped
through the same embedding first — ``g(P_c)`` (pseudo-label ``c``) and ``g(p_ood) = 0`` — then
projected, so both panels place prototypes and samples consistently.

Gradient norms span eight decades (ID ≈ 1e-8…1e-2, OOD ≈ 1), so a linear projection shows ID as one
dot at the origin. The gradient panel therefore scales each gradient radially first: direction kept,
length ``log10(‖g‖ / r0)`` with ``r0`` the 1st percentile of the ID-train norms (shorter ones → 0).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from grood.figures.style import ID_COLOUR, OKABE_ITO, OOD_COLOUR, save_figure, styled


def _pca(train: np.ndarray):
    from sklearn.decomposition import PCA

    return PCA(n_components=2, svd_solver="full").fit(np.asarray(train, dtype=np.float64))


def prototype_gradients(P: np.ndarray, p_ood: np.ndarray, wrt: str = "ood", temperature: float = 1.0):
    """``g`` of the class prototypes (each with its own class as pseudo-label) and of ``p_ood`` (0)."""
    from grood.method.gradients import grood_gradients

    P = np.asarray(P, dtype=np.float64)
    points = np.vstack([P, p_ood[None]])
    pseudo = np.vstack([np.eye(len(P)), np.eye(len(P))[:1]])  # p_ood's pseudo-label does not matter
    return grood_gradients(points, pseudo, P, p_ood, wrt, temperature)


def log_radial(g: np.ndarray, r0: float) -> np.ndarray:
    """``g`` with its direction kept and its length replaced by ``max(0, log10(‖g‖ / r0))``."""
    g = np.asarray(g, dtype=np.float64)
    r = np.linalg.norm(g, axis=1, keepdims=True)
    length = np.log10(np.maximum(r, r0) / r0)
    return np.where(r > 0, g / np.maximum(r, 1e-300) * length, 0.0)


def _label_prototypes(ax, xy: np.ndarray, names: list, min_gap_pt: float = 13.0) -> None:
    """Class prototypes as labelled discs; where any two would overlap (closer than ``min_gap_pt``),
    every prototype becomes a dot whose label sits on a leader line, fanned out on a circle in
    angular order (so no label covers another)."""
    ax.get_xlim(), ax.get_ylim()  # autoscale now, so data → points is final
    pts = ax.transData.transform(xy) * 72.0 / ax.figure.dpi
    n = len(xy)
    near = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1)) < min_gap_pt
    group = list(range(n))  # connected components of the "too close" graph
    for i in range(n):
        for j in range(n):
            if near[i, j] and group[j] != group[i]:
                old, new = group[j], group[i]
                group = [new if g == old else g for g in group]
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group):
        members.setdefault(g, []).append(i)
    if any(len(m) > 1 for m in members.values()):  # fan out all of them: no label lands on a disc
        members = {0: list(range(n))}
    disc = dict(boxstyle="circle,pad=0.25", fc="white", ec="black", lw=1.0)
    for idx in members.values():
        if len(idx) == 1:
            i = idx[0]
            ax.annotate(str(names[i]), xy[i], ha="center", va="center", fontsize=7, fontweight="bold",
                        bbox=disc, zorder=7)
            continue
        centre = pts[idx].mean(0)
        own = {i: np.arctan2(*(pts[i] - centre)[::-1]) for i in idx}
        idx = sorted(idx, key=own.get)  # labels keep the points' angular order: few crossing lines
        radius = 14.0 + 4.5 * len(idx)  # points: room for every label on the circle
        for k, i in enumerate(idx):
            angle = own[idx[0]] + 2 * np.pi * k / len(idx)
            ax.scatter([xy[i, 0]], [xy[i, 1]], s=14, color="black", zorder=7)
            offset = centre - pts[i] + radius * np.array([np.cos(angle), np.sin(angle)])
            ax.annotate(str(names[i]), xy[i], xytext=tuple(offset),
                        textcoords="offset points", ha="center", va="center", fontsize=7, fontweight="bold",
                        bbox=disc, zorder=7, arrowprops=dict(arrowstyle="-", lw=0.7, color="black"))


def gradient_space_figure(sets: dict[str, dict[str, np.ndarray]], P: np.ndarray, p_ood: np.ndarray,
                          stem: str | Path, wrt: str = "ood", temperature: float = 1.0, title: str = "",
                          class_names: list | None = None):
    """Two PCA panels (features, log-radial gradients) of ``sets``: name → ``{"features",
    "gradients"}`` in drawing order — ID train (the projections are fitted on it), ID test, one OOD
    set. Returns the written paths."""
    names = list(sets)
    if len(names) != 3:
        raise ValueError(f"gradient_space_figure draws ID train, ID test and one OOD set; got {names}")
    class_names = class_names or list(range(len(P)))
    train_norms = np.linalg.norm(np.asarray(sets[names[0]]["gradients"], dtype=np.float64), axis=1)
    r0 = float(np.percentile(train_norms[train_norms > 0], 1)) if (train_norms > 0).any() else 1.0
    embed = {"features": lambda a: np.asarray(a, dtype=np.float64), "gradients": lambda a: log_radial(a, r0)}
    protos = {"features": np.vstack([P, p_ood[None]]), "gradients": prototype_gradients(P, p_ood, wrt, temperature)}
    styles = [dict(color="#8c8c8c", marker=".", s=5, alpha=0.35),
              dict(color=ID_COLOUR, marker="o", s=7, alpha=0.55),
              dict(color=OOD_COLOUR, marker="^", s=9, alpha=0.6)]
    labels = [f"{names[0]}", f"{names[1]}", f"{names[2]} (OOD)"]
    wrt_name = {"ood": "p_ood", "pred": "P_ŷ", "all": "all prototypes"}.get(wrt, wrt)
    with styled():
        fig, axes = plt.subplots(1, 2, figsize=(11.5, 5.6))
        for ax, key, what in (
                (axes[0], "features", "feature space: penultimate features h"),
                (axes[1], "gradients", f"gradient space: g = ∂ℓ/∂{wrt_name}, log-radial\n"
                                       f"(direction of g, length log10(‖g‖ / {r0:.1e}))")):
            pca = _pca(embed[key](sets[names[0]][key]))
            for name, st in zip(names, styles):
                xy = pca.transform(embed[key](sets[name][key]))
                ax.scatter(xy[:, 0], xy[:, 1], lw=0, rasterized=True, zorder=2, **st)
            pxy = pca.transform(embed[key](protos[key]))
            ax.scatter(pxy[-1:, 0], pxy[-1:, 1], s=240, marker="*", color=OKABE_ITO["vermillion"],
                       edgecolor="black", lw=0.8, zorder=6)
            _label_prototypes(ax, pxy[:-1], class_names)
            var = 100 * pca.explained_variance_ratio_
            ax.set_xlabel(f"PC1 ({var[0]:.0f}% of ID-train variance)")
            ax.set_ylabel(f"PC2 ({var[1]:.0f}%)")
            ax.set_title(what, fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
        n = {name: len(sets[name]["features"]) for name in names}
        handles = [plt.Line2D([], [], ls="", marker=st["marker"], color=st["color"], markersize=6)
                   for st in styles]
        handles += [plt.Line2D([], [], ls="", marker="o", markersize=9, markerfacecolor="white",
                               markeredgecolor="black"),
                    plt.Line2D([], [], ls="", marker="*", markersize=13, color=OKABE_ITO["vermillion"],
                               markeredgecolor="black")]
        fig.legend(handles, [f"{lab} (n={n[name]})" for lab, name in zip(labels, names)]
                   + ["class prototypes P_c (left), g(P_c) (right), labelled by class (leader lines where crowded)",
                      "OOD prototype p_ood (left), g(p_ood) = 0 (right)"],
                   loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
        fig.suptitle((f"{title}: " if title else "") + "PCA projections, each fitted on the ID-train sample",
                     x=0.01, ha="left", fontweight="bold")
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        return save_figure(fig, stem)
