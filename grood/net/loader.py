"""Parallel decoding of a file-list dataset, batch by batch, in the order of the list.

Decoding JPEGs is the bottleneck of an ImageNet-size forward pass, so a torch ``DataLoader`` runs
``ImageFiles.workers`` processes, each decoding and preprocessing small chunks of images
(:func:`grood.net.preprocess.image_to_tensor`); the main process joins the chunks into the forward
pass's batches.  Chunks are handed out in list order and nothing in decoding is random, so the
batches -- and every number computed from them -- are the same for any number of workers.  Memory
holds at most ``workers × prefetch`` chunks and one batch, whatever the dataset's length.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from grood.data.filelist import ImageFiles
from grood.net.preprocess import InputSpec, image_to_tensor
from grood.net.progress import progress

#: images one worker decodes per hand-over: small, so memory stays flat and workers stay busy
CHUNK = 32


class DecodedFiles(Dataset):
    """Image ``i`` of a file list, decoded and in the model's input format (C, size, size)."""

    def __init__(self, files: ImageFiles, spec: InputSpec):
        self.files, self.spec = files, spec

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return image_to_tensor(self.files.read(i), self.spec, self.files.path(i))


def chunked_batches(n: int, batch_size: int, chunk: int = CHUNK) -> list[list[int]]:
    """Row indices in chunks of at most ``chunk`` that never straddle a ``batch_size`` boundary."""
    return [list(range(c, min(c + chunk, b + batch_size, n)))
            for b in range(0, n, batch_size) for c in range(b, min(b + batch_size, n), chunk)]


def _seed_worker(worker_id: int) -> None:
    """Each worker's random state from the loader's seeded generator (decoding draws none today:
    this keeps any future random step reproducible)."""
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def file_batches(files: ImageFiles, spec: InputSpec, batch_size: int, name: str,
                 chunk: int = CHUNK, seed: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, normalised batch) over ``files`` in order, decoded by ``files.workers`` processes."""
    chunks = chunked_batches(len(files), batch_size, min(chunk, batch_size))
    loader = DataLoader(DecodedFiles(files, spec), batch_sampler=chunks, num_workers=files.workers,
                        worker_init_fn=_seed_worker, generator=torch.Generator().manual_seed(seed),
                        persistent_workers=False)
    parts: list[torch.Tensor] = []
    start = filled = 0
    n_batches = -(-len(files) // batch_size)
    it = iter(loader)
    for _ in progress(range(n_batches), desc=f"{name} ({files.workers} decoding workers)"):
        end = min(start + batch_size, len(files))
        while filled < end - start:
            part = next(it)
            parts.append(part)
            filled += len(part)
        yield start, torch.cat(parts) if len(parts) > 1 else parts[0]
        parts, filled, start = [], 0, end
