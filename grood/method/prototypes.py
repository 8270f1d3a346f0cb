"""Class prototypes and the OOD prototype (docs/methods.md §1, steps 1–2).

``P_c`` is the mean penultimate feature of class ``c`` and ``Q_c`` the mean activation after an
early stage ``l``.  The default OOD prototype comes from *targeted mix-up*: each of ``n_mix``
training images is mixed at stage ``l`` with the early prototype of its runner-up class,
``ẽ = λ e_l(x) + (1-λ) Q_{c2(x)}``, the rest of the network runs on ``ẽ``, and ``p_ood`` is the mean
of the resulting features.  Other sources are offered under their own names.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from grood.net.device import fp32_forward
from grood.net.forward import batches
from grood.net.models import StagedNet
from grood.net.preprocess import InputSpec

log = logging.getLogger(__name__)


def class_means(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row means per class label 0..C-1; a class with no sample is an error, not a zero prototype."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"no training sample for class(es) {np.flatnonzero(counts == 0).tolist()}")
    sums = np.zeros((num_classes, *values.shape[1:]))
    np.add.at(sums, labels, values)
    return sums / counts.reshape(-1, *([1] * (values.ndim - 1)))


def class_means_streamed(values, labels: np.ndarray, num_classes: int, block: int = 65536,
                         rows: np.ndarray | None = None) -> np.ndarray:
    """:func:`class_means` of a row-chunked array (Zarr) read ``block`` rows at a time: the same
    float64 sums in the same row order, so the same result, without the array in memory.
    ``rows`` (sorted indices): only those rows count."""
    keep = None
    if rows is not None:
        keep = np.zeros(len(labels), dtype=bool)
        keep[rows] = True
    counts = np.bincount(labels if keep is None else labels[keep], minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"no training sample for class(es) {np.flatnonzero(counts == 0).tolist()}")
    sums = np.zeros((num_classes, *values.shape[1:]))
    for start in range(0, len(labels), block):
        y, v = labels[start : start + block], np.asarray(values[start : start + block], dtype=np.float64)
        if keep is not None:
            k = keep[start : start + block]
            y, v = y[k], v[k]
        np.add.at(sums, y, v)
    return sums / counts.reshape(-1, *([1] * (sums.ndim - 1)))


@torch.no_grad()
def early_prototypes(model: StagedNet, images: np.ndarray, labels: np.ndarray, num_classes: int,
                     layer: str, spec: InputSpec, device: torch.device, batch_size: int = 512) -> np.ndarray:
    """``Q_c``: mean activation after ``layer`` per class (true labels), accumulated in float64."""
    sums = counts = None
    for start, x in batches(images, spec, batch_size, "early prototypes"):
        with fp32_forward():
            e = model.forward_to(x.to(device), layer).double()
        y = torch.as_tensor(labels[start : start + len(x)], device=device)
        if sums is None:
            sums = torch.zeros((num_classes, *e.shape[1:]), dtype=torch.float64, device=device)
            counts = torch.zeros(num_classes, dtype=torch.float64, device=device)
        sums.index_add_(0, y, e)
        counts += torch.bincount(y, minlength=num_classes).double()
    if (counts == 0).any():
        raise ValueError(f"no training sample for class(es) {torch.nonzero(counts == 0).flatten().tolist()}")
    return (sums / counts.view(-1, *([1] * (sums.ndim - 1)))).float().cpu().numpy()


def nearest_prototype(features: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Index of the nearest class prototype (L2) per row: GROOD's ID prediction."""
    h = np.asarray(features, dtype=np.float64)
    p = np.asarray(prototypes, dtype=np.float64)
    sq = (h**2).sum(1)[:, None] - 2.0 * h @ p.T + (p**2).sum(1)[None]
    return sq.argmin(1)


def runner_up(logits: np.ndarray) -> np.ndarray:
    """Index of the second-largest logit per row."""
    return np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, 1]


@torch.no_grad()
def mixup_features(model: StagedNet, images: np.ndarray, early: np.ndarray, layer: str, lam: float,
                   spec: InputSpec, device: torch.device, batch_size: int = 512) -> np.ndarray:
    """Features ``h̃`` of images mixed at ``layer`` with the early prototype of their runner-up class."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"mix-up lambda must lie in [0, 1], got {lam}")
    q = torch.as_tensor(early, device=device)
    out = []
    for _, x in batches(images, spec, batch_size, "mix-up"):
        x = x.to(device)
        with fp32_forward():
            e = model.forward_to(x, layer)
            logits = model.fc(model.forward_from(e, layer)).float().cpu().numpy()
            c2 = torch.as_tensor(runner_up(logits), device=device)
            mixed = lam * e + (1.0 - lam) * q[c2].to(e.dtype)
            out.append(model.forward_from(mixed, layer).float().cpu().numpy())
    return np.concatenate(out)


@torch.no_grad()
def noise_candidates(n: int, spec: InputSpec, seed: int, blur_sigma: float = 1.0) -> np.ndarray:
    """Blurred uniform-noise uint8 images in the model's input format (the ``noise`` source)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(n, spec.size, spec.size, spec.channels))
    x = gaussian_filter(x, sigma=(0, blur_sigma, blur_sigma, 0))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def energy(logits: np.ndarray) -> np.ndarray:
    """Free energy ``-logsumexp(z)`` (higher = more OOD-like)."""
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(1)
    return -(m + np.log(np.exp(z - m[:, None]).sum(1)))


def most_ood_like_mean(features: np.ndarray, logits: np.ndarray, keep: float) -> np.ndarray:
    """Mean feature of the ``keep`` fraction of samples with the highest energy."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    e = energy(logits)
    n_keep = max(1, int(round(keep * len(e))))
    idx = np.argsort(-e, kind="stable")[:n_keep]
    return np.asarray(features, dtype=np.float64)[idx].mean(0)
