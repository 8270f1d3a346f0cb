"""A finished run on disk: where each output of a benchmark and seed lives, read without Snakemake.

The workflow writes (workflow/rules/*.smk)::

    <results>/<bench>/metrics.csv, summary.csv            one benchmark, every seed
    <results>/<bench>/seed<N>/model.pt, train.json        one seed
        features/<part>.zarr          parts: train, test (the ID set) and each OOD set
        prototypes/<source>.npz       P, Q (mix-up) and p_ood
        gradients/<space>/<part>.zarr space: <prototype source>_<wrt>_T<temperature>
        detectors/<detector>.npz      pickle-free (grood.detectors.store); .pkl in old runs
        scores/<detector>/<part>.npy

Only paths and small readers live here; nothing is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grood.method import vocab

DETECTOR_SUFFIXES = (".npz", ".pkl")  # the pickle-free store; legacy pickles are listed, never opened


def gradient_space(params: dict) -> str:
    """The gradient store a GROOD-family detector with these params reads (:func:`grood.method.vocab.gradient_space`)."""
    return vocab.gradient_space(params["prototype"], params["wrt"], params["temperature"])


def finished_seed_dirs(bench_dir: Path) -> list[Path]:
    """The ``seed*`` directories of a benchmark directory that hold a trained model."""
    return [p for p in Path(bench_dir).glob("seed*") if (p / "model.pt").is_file()]


class RunError(FileNotFoundError):
    """A run directory that lacks what was asked of it (named, with what it does hold)."""


@dataclass(frozen=True)
class SeedRun:
    """One seed's directory of a finished run (``<results>/<bench>/seed<N>``)."""

    root: Path

    @classmethod
    def open(cls, path: str | Path) -> "SeedRun":
        root = Path(path)
        if not root.is_dir():
            raise RunError(f"run directory {root} does not exist; pass a seed directory of a finished run, "
                           f"e.g. results/mnist/seed0")
        if not (root / "model.pt").is_file():
            seeds = sorted(p.name for p in finished_seed_dirs(root))
            hint = (f"it holds the seeds {seeds}: pass one, e.g. {root / seeds[0]}" if seeds
                    else "is the run finished? (snakemake writes model.pt after training)")
            raise RunError(f"{root} has no model.pt: not a seed directory of a finished run; {hint}")
        return cls(root)

    @property
    def bench(self) -> str:
        return self.root.resolve().parent.name

    @property
    def seed(self) -> int | None:
        m = re.fullmatch(r"seed(\d+)", self.root.resolve().name)
        return int(m.group(1)) if m else None

    @property
    def model(self) -> Path:
        return self.root / "model.pt"

    @property
    def train_json(self) -> Path:
        return self.root / "train.json"

    def train_summary(self) -> dict:
        return json.loads(self.train_json.read_text()) if self.train_json.is_file() else {}

    def features(self, part: str) -> Path:
        return self.root / "features" / f"{part}.zarr"

    def gradients(self, space: str, part: str) -> Path:
        return self.root / "gradients" / space / f"{part}.zarr"

    def prototypes(self, source: str) -> Path:
        return self.root / "prototypes" / f"{source}.npz"

    def scores(self, detector: str, part: str) -> Path:
        return self.root / "scores" / detector / f"{part}.npy"

    def detectors(self) -> dict[str, Path]:
        """Every stored detector by name (the pickle-free file where both exist)."""
        found: dict[str, Path] = {}
        for suffix in reversed(DETECTOR_SUFFIXES):
            for p in sorted((self.root / "detectors").glob(f"*{suffix}")):
                found[p.name[: -len(suffix)]] = p
        return dict(sorted(found.items()))

    def detector_file(self, name: str) -> Path:
        found = self.detectors()
        if name not in found:
            raise RunError(f"{self.root} has no detector {name!r}; it holds {sorted(found) or 'none'} "
                           f"(in {self.root / 'detectors'})")
        return found[name]

    def score_parts(self, detector: str) -> list[str]:
        """Parts with stored scores of ``detector``: ``test`` first, then the OOD sets by name."""
        parts = sorted(p.stem for p in (self.root / "scores" / detector).glob("*.npy"))
        return sorted(parts, key=lambda p: p != "test")

    def id_test_scores(self, detector: str) -> np.ndarray:
        path = self.scores(detector, "test")
        if not path.is_file():
            raise RunError(f"{path} does not exist: the run holds no ID test scores of {detector!r}, which "
                           f"set its 95%-TPR threshold; finish the run (snakemake) first")
        return np.load(path, allow_pickle=False)

    def feature_batch_size(self, default: int = 1024) -> int:
        """The batch size the run's features were computed with (their Zarr chunk rows)."""
        return self.chunk_rows(self.features("test"), "features", default)

    @staticmethod
    def chunk_rows(store: Path, array: str, default: int) -> int:
        """Rows per chunk of ``array`` in a Zarr store: the batch its stage wrote it in."""
        import zarr

        if not Path(store).exists():
            return default
        return int(zarr.open_group(str(store), mode="r")[array].chunks[0])

    def feature_attrs(self, part: str) -> dict:
        import zarr

        path = self.features(part)
        return dict(zarr.open_group(str(path), mode="r").attrs) if path.exists() else {}


@dataclass(frozen=True)
class BenchRun:
    """One benchmark's directory (``<results>/<bench>``): tables over seeds and the seed runs."""

    root: Path

    @classmethod
    def open(cls, path: str | Path) -> "BenchRun":
        root = Path(path)
        if not (root / "metrics.csv").is_file():
            hint = (f"it looks like a seed directory: pass {root.parent}" if (root / "model.pt").is_file()
                    else "pass a benchmark directory of a finished run, e.g. results/mnist")
            raise RunError(f"{root} has no metrics.csv; {hint}")
        return cls(root)

    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    def seeds(self) -> list[SeedRun]:
        runs = [SeedRun(p) for p in finished_seed_dirs(self.root)]
        return sorted(runs, key=lambda r: r.seed if r.seed is not None else -1)

    def resolve_data(self, recorded: str, data_dir: str | Path | None = None) -> Path:
        """A dataset path recorded in a store's attrs (relative to the workflow's directory), found
        in ``data_dir``, beside the results, or as written."""
        rec = Path(recorded)
        candidates = ([Path(data_dir) / rec.name] if data_dir else []) + [
            rec, self.root.resolve().parents[1] / rec]
        for c in candidates:
            if c.is_file():
                return c
        raise RunError(f"dataset {recorded} not found (looked at {[str(c) for c in candidates]}); pass the "
                       f"folder of the prepared datasets (resources/data)")
