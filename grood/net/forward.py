"""One batched forward pass per (model, dataset): penultimate features and logits, shared by all detectors."""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import numpy as np
import torch

from grood.net.device import fp32_forward
from grood.net.models import StagedNet
from grood.net.preprocess import InputSpec, to_tensor
from grood.net.progress import progress

log = logging.getLogger(__name__)


def batches(images: np.ndarray, spec: InputSpec, batch_size: int, name: str) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, normalised tensor) per batch, converting to the model's input format lazily; a
    file-list dataset (:class:`~grood.data.filelist.ImageFiles`) is decoded by parallel workers."""
    from grood.data.filelist import ImageFiles

    if isinstance(images, ImageFiles):
        from grood.net.loader import file_batches

        yield from file_batches(images, spec, batch_size, name)
        return
    for start in progress(range(0, len(images), batch_size), desc=f"{name}"):
        yield start, to_tensor(images[start : start + batch_size], spec, name)


@torch.no_grad()
def forward_batches(
    model: StagedNet,
    images: np.ndarray,
    spec: InputSpec,
    device: torch.device,
    batch_size: int = 1024,
    name: str = "images",
    sink: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    tap: Callable[[int, torch.Tensor], None] | None = None,
) -> dict[str, np.ndarray] | None:
    """Run ``model`` over ``images`` in fp32; hand each batch's ``features``/``logits`` to ``sink`` or collect them.
    ``tap(start, x)`` sees each input batch on the device too (the early prototypes' sums)."""
    collected: dict[str, list] = {"features": [], "logits": []}
    for start, x in batches(images, spec, batch_size, name):
        x = x.to(device, non_blocking=True)
        with fp32_forward():
            h = model.features(x)
            z = model.fc(h)
        if tap is not None:
            tap(start, x)
        out = {"features": h.float().cpu().numpy(), "logits": z.float().cpu().numpy()}
        if not (np.isfinite(out["features"]).all() and np.isfinite(out["logits"]).all()):
            raise FloatingPointError(
                f"{name}: non-finite features or logits in rows {start}–{start + len(x) - 1}; "
                "the model or the input scaling is broken (retrain, or check the dataset's pixel range)"
            )
        if sink is not None:
            sink(start, out)
        else:
            for k, v in out.items():
                collected[k].append(v)
    if sink is not None:
        return None
    return {k: np.concatenate(v) for k, v in collected.items()}


def encode_known_labels(labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """Original labels → model class indices; labels outside the model's classes become -1."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(int(c), -1) for c in labels], dtype=np.int64)
