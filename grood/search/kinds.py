"""The faiss index kinds grood builds, declared once: which index parameters each reads, how its
empty faiss index is made and trained, which faiss type a stored index of it is, and how the CPU
searches it.  The spec (:mod:`grood.search.spec`), the build (:mod:`grood.search.build`), the file
reader (:mod:`grood.search.io`), the queries (:mod:`grood.search.query`), the detectors' config and
evaluate's index table all read :data:`KINDS`: a new kind is one row here and its faiss code.

``flat``      exact ``IndexFlatL2`` (the default; GROOD's and kNN's published setting is exact).
``ivf_flat``  ``IndexIVFFlat``: ``nlist`` k-means cells, ``nprobe`` of them searched per query;
              full vectors, so its only error is a neighbour in an unsearched cell; searched on the
              CPU cell by cell as GEMMs (:mod:`grood.search.ivf_blocked`).
``ivf_pq``    ``IndexIVFPQ``: as ``ivf_flat`` but each vector stored as ``m`` codes of ``nbits``
              bits (``m`` bytes at 8 bits instead of 4·D), distances from the codes.

Quantisers (k-means cells, PQ codebooks) are trained on a seeded sample of ``train_size`` rows
(default: :data:`POINTS_PER_CENTROID` per centroid), so training memory does not grow with the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from grood.search.vectors import faiss

#: faiss warns below 39 training points per centroid; we never ask for fewer
MIN_POINTS_PER_CENTROID = 39
#: training rows per centroid by default: k-means converges well with 64 (faiss caps at 256)
POINTS_PER_CENTROID = 64
#: the parameters of the IVF kinds' coarse quantiser and its training sample
IVF = ("nlist", "nprobe", "train_size", "seed")


@dataclass(frozen=True)
class Kind:
    """One index kind: ``params`` it reads of an :class:`~grood.search.spec.IndexSpec` (besides
    ``metric``), ``make(spec, d, n)`` its untrained faiss index for ``n`` vectors of width ``d``,
    ``centroids(spec, n)`` how many centroids training fits (0: no training), ``faiss_type`` and
    ``faiss_tag`` (the first bytes of its serialisation) of a stored one, ``cpu_search(index)``
    a ``(queries, k) -> (distances, ids)`` of our own for the CPU, or None for faiss's, and
    ``in_place``: its storage is the vectors themselves, sized once and filled in place by the build
    (:func:`grood.search.build.fill_flat`) instead of faiss's growing ``add``."""

    exact: bool
    params: tuple[str, ...]
    faiss_type: str
    faiss_tag: bytes
    make: Callable
    centroids: Callable = lambda spec, n: 0
    cpu_search: Callable | None = None
    in_place: bool = False


def cells(spec, n: int) -> int:
    """``nlist`` capped so every cell gets ≥ 39 training points (as faiss wants)."""
    return max(1, min(spec.nlist, int(n) // MIN_POINTS_PER_CENTROID))


def _ivf(index, spec, nlist: int):
    index.cp.seed = spec.seed
    index.nprobe = min(spec.nprobe, nlist)
    return index


def _make_flat(spec, d: int, n: int):
    return faiss().IndexFlatL2(d)


def _make_ivf_flat(spec, d: int, n: int):
    fs, nlist = faiss(), cells(spec, n)
    return _ivf(fs.IndexIVFFlat(fs.IndexFlatL2(d), d, nlist), spec, nlist)


def _make_ivf_pq(spec, d: int, n: int):
    if d % spec.m:
        divisors = [v for v in range(1, min(d, 256) + 1) if d % v == 0]
        raise ValueError(f"ivf_pq: m={spec.m} sub-quantisers must divide the vector width {d}; "
                         f"choose m among {divisors}")
    rows = spec.training_rows(n)
    if n and rows < (1 << spec.nbits):
        raise ValueError(f"ivf_pq with nbits={spec.nbits} trains 2^{spec.nbits}={1 << spec.nbits} "
                         f"centroids per sub-quantiser but only {rows} vectors train it; lower "
                         f"nbits or use ivf_flat / flat for so few vectors")
    fs, nlist = faiss(), cells(spec, n)
    index = fs.IndexIVFPQ(fs.IndexFlatL2(d), d, nlist, spec.m, spec.nbits)
    index.pq.cp.seed = spec.seed
    # codebooks of 2^nbits centroids per sub-quantiser: faiss subsamples to 256 points per centroid
    # (65k rows × m k-means runs, minutes on a CPU); 64 per centroid trains them as well
    index.pq.cp.max_points_per_centroid = POINTS_PER_CENTROID
    return _ivf(index, spec, nlist)


def _ivf_flat_search(index):
    from grood.search.ivf_blocked import is_ivf_flat, search_ivf_flat

    return (lambda q, k: search_ivf_flat(index, q, k)) if is_ivf_flat(index) else None


#: every kind, by its config name (``index: {kind: ...}``)
KINDS: dict[str, Kind] = {
    "flat": Kind(exact=True, params=(), faiss_type="IndexFlatL2", faiss_tag=b"IxF2", make=_make_flat,
                 in_place=True),
    "ivf_flat": Kind(exact=False, params=IVF, faiss_type="IndexIVFFlat", faiss_tag=b"IwFl", make=_make_ivf_flat,
                     centroids=cells, cpu_search=_ivf_flat_search),
    "ivf_pq": Kind(exact=False, params=(*IVF, "m", "nbits"), faiss_type="IndexIVFPQ", faiss_tag=b"IwPQ",
                   make=_make_ivf_pq, centroids=lambda spec, n: max(cells(spec, n), 1 << spec.nbits)),
}


def kind_of(index) -> Kind | None:
    """The kind of a (CPU, unwrapped) faiss index grood built, or None."""
    return next((k for k in KINDS.values() if type(index).__name__ == k.faiss_type), None)


__all__ = ["IVF", "KINDS", "Kind", "MIN_POINTS_PER_CENTROID", "POINTS_PER_CENTROID", "cells", "kind_of"]
