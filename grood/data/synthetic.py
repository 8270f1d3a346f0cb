"""Synthetic far-OOD images: Gaussian, uniform, Bernoulli noise and "blobs"."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

NOISE_KINDS = ("gaussian", "uniform", "bernoulli", "blobs")

#: "blobs" as in Hendrycks et al.'s outlier-exposure code: Bernoulli(p=0.7) pixels, Gaussian
#: blur sigma 1.5 (per channel, edges 'nearest'), values below 0.75 set to 0, then x*255.
BLOBS_P, BLOBS_SIGMA, BLOBS_THRESHOLD = 0.7, 1.5, 0.75


def noise_images(kind: str, n: int, size: int = 28, channels: int = 1,
                 seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size) for one channel, else (n, size, size, channels)."""
    rng = np.random.default_rng(seed)
    shape = (n, size, size, channels)
    if kind == "gaussian":  # N(mean 128, std 64), rounded and clipped to [0, 255]
        x = np.rint(rng.normal(128.0, 64.0, shape)).clip(0, 255)
    elif kind == "uniform":  # integers uniform on [0, 255]
        x = rng.integers(0, 256, shape)
    elif kind == "bernoulli":  # 0 or 255, each with p = 0.5
        x = (rng.random(shape) < 0.5) * 255
    elif kind == "blobs":
        b = (rng.random(shape) < BLOBS_P).astype(np.float32)
        b = gaussian_filter(b, sigma=(0, BLOBS_SIGMA, BLOBS_SIGMA, 0), mode="nearest")
        b[b < BLOBS_THRESHOLD] = 0.0
        x = np.rint(b * 255.0).clip(0, 255)
    else:
        raise ValueError(kind)
    x = x.astype(np.uint8)
    return x[..., 0] if channels == 1 else x
