"""GROOD's targeted mix-up, shown: an image, its early activation ``e_l(x)``, the early prototype
``Q_c2`` of its runner-up class ``c2``, and the mixed activation ``λ·e_l(x) + (1 − λ)·Q_c2`` that the
rest of the network turns into an OOD-like feature (docs/methods.md §1.2). Activations are drawn as
their mean over channels, on one colour scale per row.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from grood.figures.style import CMAP, save_figure, styled


def mixup_examples(model, images: np.ndarray, early_prototypes, layer: str, lam: float,
                   spec, device="cpu") -> dict[str, np.ndarray]:
    """The arrays the figure draws, computed exactly as the mix-up does (grood.method.prototypes):
    ``early`` e_l(x), ``runner_up`` c2 (second-largest logit), ``predicted``, ``mixed``.
    ``early_prototypes``: ``Q`` as an array, or rows read on demand
    (:class:`grood.method.early_store.EarlyRows`)."""
    import torch

    from grood.net.device import fp32_forward
    from grood.net.preprocess import to_tensor
    from grood.method.prototypes import runner_up

    if isinstance(images, (list, tuple)):  # a file list's images (sizes differ): as its loader does
        from grood.net.preprocess import image_to_tensor

        x = torch.stack([image_to_tensor(np.asarray(img), spec, f"image {i}") for i, img in enumerate(images)])
    else:
        x = to_tensor(images, spec)
    x = x.to(device)
    with torch.no_grad(), fp32_forward():
        e = model.forward_to(x, layer)
        logits = model.fc(model.forward_from(e, layer)).float().cpu().numpy()
    c2 = runner_up(logits)
    e = e.float().cpu().numpy()
    mixed = lam * e + (1.0 - lam) * np.asarray(early_prototypes[c2])
    return {"early": e, "runner_up": c2, "predicted": logits.argmax(1), "mixed": mixed}


def mixup_figure(images: np.ndarray, labels: np.ndarray, examples: dict[str, np.ndarray],
                 early_prototypes, lam: float, layer: str, stem: str | Path, title: str = "",
                 class_names: list | None = None):
    """One row per image: x, e_l(x), Q_c2, mixed. ``examples`` from :func:`mixup_examples`;
    ``labels`` and the class indices are shown through ``class_names`` (the original labels)."""
    names = class_names or list(range(len(early_prototypes)))
    n = len(images)
    with styled():
        fig, axes = plt.subplots(n, 5, figsize=(9.4, 1.95 * n + 0.6),
                                 gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.07]}, squeeze=False)
        for i in range(n):
            c2 = int(examples["runner_up"][i])
            maps = [examples["early"][i].mean(0), np.asarray(early_prototypes[c2]).mean(0),
                    examples["mixed"][i].mean(0)]
            vmin, vmax = min(m.min() for m in maps), max(m.max() for m in maps)
            img = np.asarray(images[i])
            axes[i, 0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            axes[i, 0].set_ylabel(f"label {labels[i]}\npredicted {names[int(examples['predicted'][i])]}",
                                  fontsize=8)
            for j, m in enumerate(maps, start=1):
                im = axes[i, j].imshow(m, cmap=CMAP, vmin=vmin, vmax=vmax)
            captions = ["image x", f"e(x) after {layer}", f"Q: class {names[c2]}'s mean e (runner-up)",
                        f"mixed: {lam:g}·e(x) + {1 - lam:g}·Q"]
            for j, cap in enumerate(captions):
                axes[i, j].set_title(cap, fontsize=8)
                axes[i, j].set_xticks([])
                axes[i, j].set_yticks([])
                axes[i, j].grid(False)
            fig.colorbar(im, cax=axes[i, 4])
            axes[i, 4].tick_params(labelsize=6)
        fig.suptitle((f"{title}: " if title else "") + "targeted mix-up at the early layer "
                     "(activations: mean over channels, one colour scale per row)",
                     x=0.01, ha="left", fontweight="bold", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, stem)
