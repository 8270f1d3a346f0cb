"""Tuning on validation data: a detector's grid, its points as detectors of their own, the choice.

A config sweeps a detector with ``detectors: {grood: {method: grood, k: 1, sweep: {k: [1, 5, 10],
lam: [0.3, 0.5]}}}`` (the product of the lists; a list of such mappings: the union of their
products; ``sweep: paper``: the grid its class carries as ``sweep_grid``).  Each
point of the grid is a detector of its own, named ``<detector>~<param>=<value>,…`` over the swept
parameters (:func:`point_name`), fitted and scored like any other (its own cached jobs: adding a value
adds only its points), on the benchmark's validation parts only: the ID-validation split (part
``id_val``) and the OOD-validation sets.  Per training seed, the point with the best validation AUROC
(ID-validation against each OOD-validation set, mean over the sets; ties: the first point in grid
order) is chosen (:func:`choose`), and its test scores become the detector's.  Points whose
parameters cannot differ (a GROOD prototype setting its source does not read) are one point
(:meth:`grood.detectors.base.Detector.effective_params`).

Torch-free: the Snakemake scheduler reads it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

#: the key of a detector's config entry that holds its grid
SWEEP = "sweep"
#: ``sweep: paper``: the grid the detector's class carries (``sweep_grid``)
PAPER = "paper"
#: between a detector's name and its point's values
POINT_SEP = "~"
#: the part holding a benchmark's ID-validation split
ID_VAL = "id_val"
#: what the choice maximises
VALIDATION_METRIC = "auroc"
#: characters a swept value may print with (it becomes part of file names)
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-+")


@dataclass(frozen=True)
class Point:
    """One point of a detector's grid: ``name``, the detector's ``params`` there (without
    ``method``) and the swept ``values`` that name it."""

    name: str
    params: dict = field(hash=False)
    values: dict = field(hash=False)


def is_swept(spec: dict) -> bool:
    return isinstance(spec, dict) and SWEEP in spec


def base_params(spec: dict) -> dict:
    """A swept detector's params outside its grid (its entry without ``method`` and ``sweep``)."""
    return {k: v for k, v in spec.items() if k not in ("method", SWEEP)}


def grids(spec: dict) -> list[dict[str, list]]:
    """The grids of a swept detector's entry: its ``sweep`` mapping, each mapping of a ``sweep`` list
    (the union of their products, in order: a cheaper grid than one product where some values only
    matter together), or its class's ``sweep_grid``."""
    from grood.detectors import METHODS

    sweep = spec[SWEEP]
    if sweep == PAPER:
        return [dict(METHODS[spec["method"]].sweep_grid)] if spec.get("method") in METHODS else [{}]
    return [dict(g) for g in sweep] if isinstance(sweep, list) else [dict(sweep)]


def swept_keys(spec: dict) -> list[str]:
    """Every swept parameter, in order of first appearance (the order point names list them)."""
    return list(dict.fromkeys(k for g in grids(spec) for k in g))


def value_text(value) -> str:
    from grood.method.vocab import value_text as text

    return text(value)


def point_name(detector: str, values: dict) -> str:
    """``<detector>~<param>=<value>,…`` in grid order, values as :func:`grood.method.vocab.value_text`
    prints them (numbers with 6 significant digits)."""
    return detector + POINT_SEP + ",".join(f"{k}={value_text(v)}" for k, v in values.items())


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def points(detector: str, spec: dict) -> list[Point]:
    """Every distinct point of a swept detector's grid, in grid order (the product of the swept
    values, the first parameter varying slowest); points with the same effective params (defaults
    filled in) are one, the first; each named by the swept values it keeps."""
    from grood.detectors import METHODS

    cls = METHODS[spec["method"]]
    keys = swept_keys(spec)
    base = base_params(spec)
    defaults = cls.param_defaults()
    seen: dict[str, Point] = {}
    for axes in grids(spec):
        for combo in itertools.product(*axes.values()):
            swept = dict(zip(axes, combo))
            params = cls.effective_params({**base, **swept})
            key = _canonical({**defaults, **params})  # a default given or not: the same detector
            if key in seen:
                continue
            values = {k: swept[k] for k in keys if k in swept and k in params}
            seen[key] = Point(point_name(detector, values), params, values)
    return list(seen.values())


def sweep_problems(detector: str, spec: dict) -> list[str]:
    """What is wrong with a swept detector's entry, each naming the key (``detectors.<name>.sweep``)
    and the fix; every point is checked as a detector of its own."""
    from grood.detectors import METHODS, check_detector

    where = f"detectors.{detector}.{SWEEP}"
    method = spec.get("method")
    if method not in METHODS:
        return [f"detectors.{detector}.method: unknown method {method!r}; choose one of {sorted(METHODS)}"]
    sweep = spec[SWEEP]
    if sweep == PAPER:
        if not METHODS[method].sweep_grid:
            return [f"{where}: method {method!r} carries no grid (sweep_grid) to sweep; list the values, "
                    f"e.g. sweep: {{param: [v1, v2]}}, or remove sweep"]
    elif not ((isinstance(sweep, dict) and sweep)
              or (isinstance(sweep, list) and sweep and all(isinstance(g, dict) and g for g in sweep))):
        return [f"{where}: must map parameters to lists of values (e.g. {{k: [1, 5, 10]}}), be a list of "
                f"such mappings (the union of their grids) or be {PAPER!r} (the grid of method {method!r}), "
                f"got {sweep!r}"]
    problems = []
    defaults = METHODS[method].param_defaults()
    for key, values in [kv for g in grids(spec) for kv in g.items()]:
        if key not in defaults:
            problems.append(f"{where}.{key}: not a parameter of method {method!r}; sweep one of {sorted(defaults)}")
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}.{key}: must be a non-empty list of values, got {values!r}")
        elif len({_canonical(v) for v in values}) != len(values):
            problems.append(f"{where}.{key}: repeats a value in {values}; list each value once")
        else:
            bad = [v for v in values if isinstance(v, (dict, list)) or not set(value_text(v)) <= _SAFE]
            if bad:
                problems.append(f"{where}.{key}: values become file names; {bad} hold characters other than "
                                f"letters, digits and _.-+")
        if key in base_params(spec):
            problems.append(f"{where}.{key}: also set outside the sweep ({key}: {spec[key]!r}); keep one")
    if problems:
        return problems
    pts = points(detector, spec)
    names: dict[str, Point] = {}
    for p in pts:
        for problem in check_detector(method, p.params, where):
            problems.append(f"{problem} (at the grid point {p.name})")
        if p.name in names:
            problems.append(f"{where}: grid points {names[p.name].values} and {p.values} print alike "
                            f"({p.name}); use values that differ within their first 6 digits")
        names[p.name] = p
    return list(dict.fromkeys(problems))


def choose(scores: list[float]) -> int:
    """The index of the best validation score; ties: the first in grid order."""
    if not scores:
        raise ValueError("no grid point to choose from")
    best = max(scores)
    return next(i for i, s in enumerate(scores) if s == best)


__all__ = ["ID_VAL", "PAPER", "POINT_SEP", "SWEEP", "VALIDATION_METRIC", "Point", "base_params", "choose",
           "grids", "is_swept", "point_name", "points", "sweep_problems", "swept_keys"]
