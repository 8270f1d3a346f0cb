"""A finished run on disk, read without Snakemake: a benchmark's directory (:class:`BenchRun`) and
one seed's (:class:`SeedRun`), each output found through the run layout (:mod:`grood.layout`), the
templates the workflow's rules write by.  Only paths and small readers live here; nothing is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grood import layout
from grood.method import vocab

#: a seed's directory below its benchmark's (``seed{seed}``), as a glob and as a pattern
_SEED_NAME = layout.SEED_DIR.removeprefix(layout.BENCH_DIR + "/")
SEED_GLOB = layout.fill(_SEED_NAME, seed="*")
SEED_PATTERN = re.escape(_SEED_NAME).replace(re.escape("{seed}"), r"(\d+)")


def gradient_space(params: dict) -> str:
    """The gradient store a GROOD-family detector with these params reads (:func:`grood.method.vocab.gradient_space`)."""
    return vocab.gradient_space(params["prototype"], params["wrt"], params["temperature"],
                                vocab.prototype_overrides(params["prototype"], params))


def prototype_name(params: dict) -> str:
    """The prototypes file a GROOD-family detector with these params reads (:func:`grood.method.vocab.prototype_name`)."""
    return vocab.prototype_name(params["prototype"], vocab.prototype_overrides(params["prototype"], params))


def finished_seed_dirs(bench_dir: Path) -> list[Path]:
    """The seed directories of a benchmark directory that hold a trained model."""
    return [p for p in Path(bench_dir).glob(SEED_GLOB) if (p / _in_seed("model")).is_file()]


def _in_seed(output: str, **values) -> str:
    """``output``'s path below a seed's directory."""
    return layout.below(layout.SEED_DIR, output, **values)


def _in_bench(output: str, **values) -> str:
    """``output``'s path below a benchmark's directory."""
    return layout.below(layout.BENCH_DIR, output, **values)


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
        if not (root / _in_seed("model")).is_file():
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
        m = re.fullmatch(SEED_PATTERN, self.root.resolve().name)
        return int(m.group(1)) if m else None

    @property
    def model(self) -> Path:
        return self.root / _in_seed("model")

    @property
    def train_json(self) -> Path:
        return self.root / _in_seed("train_json")

    def train_summary(self) -> dict:
        return json.loads(self.train_json.read_text()) if self.train_json.is_file() else {}

    def features(self, part: str) -> Path:
        return self.root / _in_seed("features", part=part)

    def gradients(self, space: str, part: str) -> Path:
        return self.root / _in_seed("gradients", space=space, part=part)

    def prototypes(self, source: str) -> Path:
        return self.root / _in_seed("prototypes", source=source)

    def scores(self, detector: str, part: str) -> Path:
        return self.root / _in_seed("scores", detector=detector, part=part)

    def glob(self, output: str, **values) -> list[Path]:
        """The files of ``output`` that exist, every field not given matching anything (sorted)."""
        return sorted(self.root.glob(layout.pattern(layout.below(layout.SEED_DIR, output, **values))))

    def detectors(self) -> dict[str, Path]:
        """Every stored detector by name (the pickle-free file where both exist; a legacy pickle
        is listed, never opened)."""
        store = Path(_in_seed("detector", detector="*"))
        found: dict[str, Path] = {}
        for pattern in (store.with_suffix(layout.LEGACY_DETECTOR_SUFFIX), store):
            for p in sorted(self.root.glob(str(pattern))):
                found[p.name.removesuffix(p.suffix)] = p
        return dict(sorted(found.items()))

    def gradient_spaces(self) -> list[str]:
        """The gradient spaces with a stored training store (``<source>_<wrt>_T<temperature>``)."""
        return [p.parent.name for p in self.glob("gradients", part="train")]

    def detector_file(self, name: str) -> Path:
        found = self.detectors()
        if name not in found:
            raise RunError(f"{self.root} has no detector {name!r}; it holds {sorted(found) or 'none'} "
                           f"(in {self.root / Path(_in_seed('detector', detector='x')).parent})")
        return found[name]

    def score_parts(self, detector: str) -> list[str]:
        """Parts with stored scores of ``detector``: ``test`` first, then the OOD sets by name."""
        parts = sorted(p.stem for p in self.glob("scores", detector=detector))
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
        if not (root / _in_bench("metrics_csv")).is_file():
            hint = (f"it looks like a seed directory: pass {root.parent}" if (root / _in_seed("model")).is_file()
                    else "pass a benchmark directory of a finished run, e.g. results/mnist")
            raise RunError(f"{root} has no metrics.csv; {hint}")
        return cls(root)

    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def metrics_csv(self) -> Path:
        return self.root / _in_bench("metrics_csv")

    def train_jsons(self) -> dict[int, Path]:
        """Each finished seed's ``train.json`` that exists, by seed."""
        return {run.seed: run.train_json for run in self.seeds() if run.train_json.is_file()}

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
