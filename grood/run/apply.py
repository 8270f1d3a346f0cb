"""Apply a finished run to new images: read them, then score them with the pipeline's own stages.

The readable images become a prepared dataset of their own (one per image shape) in a temporary
folder, and the very stage functions the workflow's jobs call run on it — ``features`` (the run's
checkpoint, its feature batch size), ``gradients`` (the detector's prototypes file, ``wrt`` and
temperature, the run's gradient row blocks) and ``score`` (the run's fitted detector; an exact k-NN
search gives the same bits on any thread count, :mod:`grood.search.exact`) — so there is no second
copy of the computation: scoring the ID test set here gives the stored scores bit for bit.  Everything comes from the run directory
(:mod:`grood.run.finished`), including the stored ID test scores that set the threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grood.data.errors import DataError
from grood.method.vocab import GAIA_ARRAYS, GRADIENT_STORE_ARRAYS
from grood.run.finished import RunError, SeedRun, gradient_space, prototype_name

log = logging.getLogger("grood.run.apply")


# ------------------------------------------------------------------------------------ inputs

@dataclass
class Inputs:
    """Readable images grouped by array shape (one batchable array each), and what was skipped."""

    groups: list[tuple[np.ndarray, list[int]]] = field(default_factory=list)  # (images, input rows)
    names: list[str] = field(default_factory=list)  # one per image, in input order
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (input, why)

    def __len__(self) -> int:
        return len(self.names)


def read_inputs(paths: list[str | Path], size: int) -> Inputs:
    """Images from folders (every file below, sorted), ``.npz`` files (``images`` or ``x_test``) and
    image files. Non-square images are resized to ``size`` and centre-cropped (the pipeline's
    ``size`` param); square ones keep their size for :func:`grood.net.preprocess.to_tensor` to resize,
    as for any dataset. Unreadable inputs are recorded in ``skipped``, never dropped silently."""
    from grood.data.pixels import is_image_file, read_image
    from grood.net.progress import progress

    singles: list[tuple[str, np.ndarray]] = []
    out = Inputs()
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file())
            if not found:
                out.skipped.append((str(p), "empty folder"))
            for f in found:
                if is_image_file(f):
                    files.append(f)
                else:
                    out.skipped.append((str(f), f"not an image file (extension {f.suffix or 'none'})"))
        elif p.suffix.lower() == ".npz" and p.is_file():
            try:
                images = _npz_images(p, size)
            except DataError as e:
                out.skipped.append((str(p), str(e)))
                continue
            _add_group(out, images, [f"{p}[{i}]" for i in range(len(images))])
        elif p.is_file():
            files.append(p)
        else:
            out.skipped.append((str(p), "no such file or folder"))
    for f in progress(files, desc="reading images"):
        try:
            img = read_image(f)
        except DataError as e:
            out.skipped.append((str(f), str(e).removeprefix(f"cannot read image {f}: ")))
            continue
        if img.shape[0] != img.shape[1]:
            img = read_image(f, size)  # non-square: resize the shorter side and centre-crop
        singles.append((str(f), img))
    shapes: dict[tuple, list[int]] = {}
    for i, (_, img) in enumerate(singles):
        shapes.setdefault(img.shape, []).append(i)
    for idx in shapes.values():
        _add_group(out, np.stack([singles[i][1] for i in idx]), [singles[i][0] for i in idx])
    return out


def _add_group(out: Inputs, images: np.ndarray, names: list[str]) -> None:
    rows = list(range(len(out.names), len(out.names) + len(names)))
    out.names.extend(names)
    out.groups.append((images, rows))


def _npz_images(path: Path, size: int) -> np.ndarray:
    """The images of a user ``.npz`` (``images``, else ``x_test``: a prepared dataset's test split)."""
    import zipfile

    from grood.data.pixels import as_images

    try:
        with np.load(path, allow_pickle=False) as z:
            key = "images" if "images" in z.files else "x_test" if "x_test" in z.files else None
            if key is None:
                raise DataError(f"no `images` or `x_test` array (found {sorted(z.files)}); save the images "
                                f"with np.savez(path, images=...)")
            x = z[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"not a readable .npz without pickles ({type(e).__name__}: {e})") from None
    what = f"{path} [{key}]"
    try:
        images, _ = as_images(x, what)
    except DataError as e:
        if "not square" not in str(e):
            raise
        images, _ = as_images(x, what, size)  # non-square: resized and centre-cropped, as image files
    return images


# ---------------------------------------------------------------------------------- detector

def scorable_detector(path: Path):
    """The detector a run stored at ``path``, as configured (from its checked header; its fitted state
    stays on disk for the score stage), refused when it cannot score new images: a legacy pickle is
    never opened, an index-sharded fit holds no index."""
    from grood.detectors import make_detector
    from grood.detectors.store import read_header

    if path.suffix == ".pkl":
        raise RunError(f"{path} is a pickle (grood's detector format before the pickle-free store): opening "
                       f"it could run whatever code it holds, so grood never does. Fix: re-fit the run's "
                       f"detectors with this grood (snakemake re-runs fit_detector, seconds per detector)")
    header = read_header(path)
    shards = header.get("index_shards", 1)
    if shards > 1:
        raise RunError(f"{path} was fitted with shards.index: {shards}: it holds no k-NN index (the "
                       f"run's shard jobs searched only its own datasets), so it cannot score new images. Fix: "
                       f"re-fit it with one index (snakemake --config shards='{{index: 1}}' re-runs fit_detector)")
    return make_detector(header["method"], header["params"])


# ---------------------------------------------------------------------------------- scoring

def score_inputs(run: SeedRun, detector: str, inputs: Inputs, batch_size: int | None = None,
                 device: str = "auto", level: float = 0.95) -> pd.DataFrame:
    """One row per image: ``input``, ``score``, ``decision`` (``in`` when ``score ≥ threshold``),
    ``predicted_class`` (original label) and ``threshold`` (keeps ``level`` of the run's ID test set)."""
    import tempfile

    import torch

    from grood.evaluation.metrics import threshold_at_tpr

    if len(inputs) == 0:
        raise DataError("no readable image among the inputs" + _skipped_note(inputs))
    path = run.detector_file(detector)
    det = scorable_detector(path)
    threshold = threshold_at_tpr(run.id_test_scores(detector), level)
    classes = list(torch.load(run.model, map_location="cpu", weights_only=True)["classes"])
    batch_size = batch_size or run.feature_batch_size()
    scores, predicted = np.empty(len(inputs)), np.empty(len(inputs), dtype=np.int64)
    with tempfile.TemporaryDirectory(prefix="grood-score-") as tmp:
        for i, (images, rows) in enumerate(inputs.groups):
            scores[rows], predicted[rows] = score_images(run, path, det, images, Path(tmp) / f"shape{i}",
                                                         batch_size, device)
    return pd.DataFrame({"input": inputs.names, "score": scores,
                         "decision": np.where(scores >= threshold, "in", "out"),
                         "predicted_class": np.asarray(classes)[predicted], "threshold": threshold})


def score_images(run: SeedRun, detector_npz: Path, det, images: np.ndarray, workdir: Path, batch_size: int,
                 device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Scores (float64) and the network's predicted class index of ``images`` (one shape), by the
    pipeline's stages on them as a dataset of their own in ``workdir``: features (with GAIA's
    statistics when the detector reads them, as the run's features jobs of scored parts), the
    detector's gradients when it reads a gradient store, then its scores."""
    from grood.stages.features import features_stage
    from grood.stages.gradients import gradients_stage
    from grood.stages.score import score_stage
    from grood.storage import read_zarr, save_npz

    workdir.mkdir(parents=True)
    data = workdir / "images.npz"
    save_npz(data, {"x_test": images}, {"dataset": "grood score inputs", "n_test": len(images)})
    stores = [workdir / "features.zarr"]
    clock = _Clock()
    gaia = bool(set(det.requires) & set(GAIA_ARRAYS))  # GAIA: its statistics from the same pass
    features_stage(run.model, data, "test", False, stores[0], batch_size, device, gaia=gaia)
    clock.lap(f"network on {len(images)} image(s)" + (" with GAIA's backward passes" if gaia else ""))
    if set(det.requires) & set(GRADIENT_STORE_ARRAYS):
        params = det.get_params()
        block = run.chunk_rows(run.gradients(gradient_space(params), "test"), "gradients", default=8192)
        stores.append(workdir / "gradients.zarr")
        gradients_stage(stores[0], run.prototypes(prototype_name(params)), params["wrt"], params["temperature"],
                        stores[1], block)
        clock.lap("GROOD gradients")
    score_stage(detector_npz, stores, workdir / "scores.npy", model_pt=run.model, data_npz=data, device=device)
    clock.lap("scores")
    logits, _ = read_zarr(stores[0], ["logits"])
    return np.load(workdir / "scores.npy"), logits["logits"].argmax(1)


class _Clock:
    """Logs the seconds each step took (``grood -v``)."""

    def __init__(self):
        import time

        self._now = time.perf_counter
        self._last = self._now()

    def lap(self, what: str) -> None:
        now = self._now()
        log.info("%s: %.2f s", what, now - self._last)
        self._last = now


def _skipped_note(inputs: Inputs) -> str:
    if not inputs.skipped:
        return ""
    shown = "; ".join(f"{name}: {why}" for name, why in inputs.skipped[:5])
    more = f" (and {len(inputs.skipped) - 5} more)" if len(inputs.skipped) > 5 else ""
    return f" ({len(inputs.skipped)} skipped: {shown}{more})"
