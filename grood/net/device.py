"""Device and precision choices in one place: use the GPU when there is one, bf16 only for training.

Everything that is scored (features, logits, prototypes, ODIN's perturbed forward pass) comes from a
full-fp32 forward pass (:func:`fp32_forward`): bf16 ties saturated softmaxes and coarsens distances,
and TF32 convolutions (cuDNN's default on Ampere and later GPUs) keep only 10 mantissa bits.
"""

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
        build = (f"this torch is a CPU-only build ({torch.__version__}): install your cluster's CUDA build of "
                 f"torch" if torch.version.cuda is None else f"torch {torch.__version__} is built for CUDA "
                 f"{torch.version.cuda} but finds no device: does the job have a GPU (the profile's `gpu: 1`), "
                 f"and does the node's driver support that CUDA?")
        raise RuntimeError(
            f"device {requested!r} was asked for but torch sees no CUDA GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}, host {os.uname().nodename}); "
            f"{build}. Stopping now rather than running on the CPU; set device: auto or cpu to allow that"
        )
    return torch.device(requested)


def autocast(device: torch.device, precision: str):
    """Training autocast for ``precision`` in {fp32, bf16, auto}.

    ``auto`` is bf16 on a CUDA GPU that supports it and fp32 elsewhere: on CPU, bf16 is slower for
    small convolutions and made the LeNet diverge at lr 0.1 (measured); ask for ``bf16`` explicitly
    where it pays (the batch-normalised CNN: 11 vs 25 s/epoch on 2 cores).
    """
    if precision not in ("fp32", "bf16", "auto"):
        raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "auto" and not (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def fp32_forward():
    """Full-precision inference: no autocast, no TF32 in matmuls or cuDNN convolutions."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast(device_type="cuda", enabled=False), torch.autocast(device_type="cpu", enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


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
