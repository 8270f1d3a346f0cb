"""Class filtering and deterministic subsets (``classes``, ``max_train``, ``max_test``)."""
from __future__ import annotations

import numpy as np

SUBSET_METHOD = ("class-stratified: each label gets floor(n*share) samples, the remainder going "
                 "to the labels with the largest fractional parts (ties: smaller label); within "
                 "a label a seeded uniform random choice (numpy default_rng([seed, split])); "
                 "kept in the original order. Unlabelled (-1) data: a seeded uniform random "
                 "choice, original order. n >= size keeps everything.")

SPLIT_STREAM = {"train": 0, "test": 1}


def stratified_indices(y: np.ndarray, n: int, seed: int, split: str) -> np.ndarray:
    """Sorted indices of a deterministic class-stratified subset of size ``min(n, len(y))``."""
    size = len(y)
    if n >= size:
        return np.arange(size)
    rng = np.random.default_rng([seed, SPLIT_STREAM[split]])
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) == 1:
        return np.sort(rng.choice(size, n, replace=False))
    quota = counts * n / size
    take = np.floor(quota).astype(int)
    rest = n - take.sum()
    order = sorted(range(len(labels)), key=lambda i: (-(quota[i] - take[i]), labels[i]))
    for i in order[:rest]:
        take[i] += 1
    chosen = []
    for label, k in zip(labels, take):
        idx = np.flatnonzero(y == label)
        chosen.append(rng.choice(idx, k, replace=False))
    return np.sort(np.concatenate(chosen))


def training_share_mask(labels: np.ndarray, share: float) -> np.ndarray:
    """The rows of a training set that a ``train_share`` (a GROOD tuning parameter) keeps: a
    class-stratified subset of ``round(share · n)`` rows (:func:`stratified_indices`, seed 0), the same
    for every training seed and stage, so the prototypes and GROOD's index see the same rows."""
    n = len(labels)
    keep = np.zeros(n, dtype=bool)
    keep[stratified_indices(np.asarray(labels), max(1, int(round(share * n))), 0, "train")] = True
    return keep
