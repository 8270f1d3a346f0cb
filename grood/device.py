"""Device and precision choices in one place: use the GPU when there is one, bf16 where safe."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

log = logging.getLogger(__name__)


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error, not a fallback."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {requested!r} was asked for but torch sees no CUDA GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); set device: auto or cpu"
        )
    return torch.device(requested)


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision`` in {fp32, bf16, auto}; ``auto`` picks bf16 when supported."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "auto":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return contextlib.nullcontext()
    elif precision != "bf16":
        raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads: results on CPU are reproducible for a fixed thread count."""
    if threads:
        torch.set_num_threads(int(threads))


def seed_everything(seed: int) -> torch.Generator:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
