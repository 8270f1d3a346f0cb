"""How a benchmark case is measured: each way warmed up (peak memory taken), then timed in
interleaved rounds; outputs compared; one :class:`Row` per comparison (see :mod:`benchmarks.bench`)."""

from __future__ import annotations

import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch


@dataclass
class Way:
    """One way of computing a case's result: ``fn()`` returns it; ``memory`` says how to see its peak."""

    fn: Callable[[], Any]
    memory: str | None = "host"  # "host" (tracemalloc), "cuda" (torch.cuda), None (not measurable)
    device: torch.device | None = None  # synchronised around the timer when CUDA


@dataclass
class Measured:
    output: Any
    times: list[float]
    peak_bytes: int | None
    memory: str | None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(way: Way) -> tuple[Any, int | None]:
    """Run ``way`` once (the warm-up) and return its output and peak memory in bytes (or None)."""
    if way.memory == "host":
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            out = way.fn()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return out, peak
    if way.memory == "cuda":
        dev = way.device or torch.device("cuda")
        _sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        out = way.fn()
        _sync(dev)
        return out, torch.cuda.max_memory_allocated(dev) - base
    out = way.fn()
    _sync(way.device)
    return out, None


def measure(ways: dict[str, Way], repeats: int = 3,
            cleanup: Callable[[Any], None] | None = None) -> dict[str, Measured]:
    """Warm up every way (peak memory, kept output), then time ``repeats`` interleaved rounds.

    A way whose memory is measured runs twice before timing: once plain, once traced, so that
    first-call imports and caches do not count towards its peak.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    names = list(ways)
    result: dict[str, Measured] = {}
    for name in names:
        if ways[name].memory is not None:  # first calls import and initialise; keep that out of the peak
            first = ways[name].fn()
            if cleanup is not None:
                cleanup(first)
            del first
        out, peak = _peak(ways[name])
        result[name] = Measured(out, [], peak, ways[name].memory if peak is not None else None)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            w = ways[name]
            _sync(w.device)
            t0 = time.perf_counter()
            out = w.fn()
            _sync(w.device)
            result[name].times.append(time.perf_counter() - t0)
            if cleanup is not None:
                cleanup(out)
            del out
    return result


def agreement(ours: np.ndarray, reference: np.ndarray, tol: float) -> tuple[bool, float]:
    """``max|ours − ref| ≤ tol · max|ref|``; returns (ok, that relative error). ``tol=0``: bit-equal."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return False, float("inf")
    if tol == 0:
        return bool(np.array_equal(a, b)), 0.0 if np.array_equal(a, b) else float("inf")
    scale = float(np.abs(b).max()) if b.size else 0.0
    if scale == 0.0 or not np.isfinite(a).all():
        return False, float("inf")  # agreement between zeros (or with NaN) proves nothing
    err = float(np.abs(a - b).max()) / scale
    return err <= tol, err


@dataclass
class Row:
    case: int
    name: str
    size: str
    ours: str
    reference: str
    device: str
    ours_s: float
    ref_s: float
    ratio: float
    ours_peak_mb: float | None
    ref_peak_mb: float | None
    memory: str  # how each peak was taken, "ours/ref": host (tracemalloc), cuda, none
    agree: bool
    error: float  # relative error (see ``agreement``); 0 for bit-equal
    tol: float
    note: str = ""
    ours_times: list[float] = field(default_factory=list)
    ref_times: list[float] = field(default_factory=list)
    target: str = ""  # what is asked of this row, if anything
    met: bool | None = None  # whether the target was met (None: no target)


def _mb(m: Measured) -> float | None:
    return None if m.peak_bytes is None else m.peak_bytes / 2**20


def _memory_label(ours: Measured, ref: Measured) -> str:
    return f"{ours.memory or 'none'}/{ref.memory or 'none'}"


def make_row(case: int, name: str, size: str, ours_name: str, ref_name: str, m: dict[str, Measured],
             ok_err: tuple[bool, float], tol: float, device: str, note: str = "") -> Row:
    o, r = m[ours_name], m[ref_name]
    return Row(case, name, size, ours_name, ref_name, device, o.median, r.median, r.median / o.median,
               _mb(o), _mb(r), _memory_label(o, r), ok_err[0], ok_err[1], tol, note,
               list(o.times), list(r.times))
