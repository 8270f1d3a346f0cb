"""Training curves of every seed: loss, training accuracy and learning rate per epoch (train.json's
``history``), the test accuracy marked at the last epoch. Accuracy is drawn on a logit scale, so
98% → 99% → 99.5% stay apart instead of merging at the top."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from grood.figures.style import save_figure, series_style, styled


ACCURACY_TICKS = [0.1, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999]


def training_curves(histories: dict[int, list[dict]], stem: str | Path, test_accuracy: dict[int, float] | None = None,
                    title: str = ""):
    """``histories``: seed → list of ``{"epoch", "loss", "train_acc", "lr"}``. Returns the written paths."""
    test_accuracy = test_accuracy or {}
    if not any(histories.values()):  # an adopted network (train: pretrained / checkpoint) has no epochs
        return _no_training(stem, test_accuracy, title)
    with styled():
        fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.6))
        for i, (seed, hist) in enumerate(sorted(histories.items())):
            if not hist:
                continue
            st = series_style(i)
            ep = np.array([h["epoch"] for h in hist])
            kw = dict(color=st["color"], ls=st["linestyle"], marker=st["marker"], markersize=4, label=f"seed {seed}")
            axes[0].plot(ep, [h["loss"] for h in hist], **kw)
            axes[1].plot(ep, np.clip([h["train_acc"] for h in hist], 1e-4, 1 - 1e-4), **kw)
            axes[2].plot(ep, [h["lr"] for h in hist], **kw)
            if seed in test_accuracy:
                axes[1].scatter([ep[-1] + 0.25], [test_accuracy[seed]], marker=st["marker"], s=40,
                                facecolor="white", edgecolor=st["color"], lw=1.4, zorder=4)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("training loss (log scale)")
        axes[1].set_yscale("logit")
        axes[1].yaxis.set_major_locator(FixedLocator(ACCURACY_TICKS))
        axes[1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))
        axes[1].yaxis.set_minor_locator(NullLocator())
        axes[1].set_ylabel("accuracy (logit scale)")
        axes[1].scatter([], [], marker="o", facecolor="white", edgecolor="grey", label="test accuracy")
        axes[2].set_ylabel("learning rate")
        for ax, t in zip(axes, ("loss", "training accuracy (open: test, after training)", "learning rate")):
            ax.set_xlabel("epoch")
            ax.set_title(t, fontsize=9)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[1].legend(loc="lower right")
        fig.suptitle((f"{title}: " if title else "") + "training curves per seed", x=0.01, ha="left",
                     fontweight="bold")
        fig.tight_layout()
        return save_figure(fig, stem)


def _no_training(stem, test_accuracy: dict[int, float], title: str):
    """The page for a benchmark that trained nothing: says so, with each seed's test accuracy."""
    acc = ", ".join(f"seed {s}: {100 * a:.2f}%" for s, a in sorted(test_accuracy.items())) or "not recorded"
    with styled():
        fig, ax = plt.subplots(figsize=(8.0, 2.0))
        ax.axis("off")
        ax.text(0.5, 0.5, "no training curves: the network was adopted as given (train: pretrained or "
                f"checkpoint), not trained by the benchmark\nID test accuracy: {acc}",
                ha="center", va="center", fontsize=10, wrap=True)
        fig.suptitle((f"{title}: " if title else "") + "training curves per seed", x=0.01, ha="left",
                     fontweight="bold")
        return save_figure(fig, stem)
