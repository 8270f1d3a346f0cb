"""Apply a finished run to new images: read them, run the run's network, score with its detector.

Everything comes from the run directory (:mod:`grood.run.finished`): checkpoint (input spec, classes),
prototypes, fitted detector and the stored ID test scores that set the threshold.  Each step
repeats the pipeline's own computation — the same forward pass (fp32, channels-last, the run's
feature batch size), the same closed-form gradients in the same row blocks, the same detector —
so scoring the ID test set here gives the stored scores.  When a stage changes (features, gradients,
score, the run layout in :mod:`grood.run.finished`), this module must follow: the slow test
``tests/test_cli.py::test_score_of_the_id_test_set_equals_the_pipeline`` catches drift.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from grood.data.errors import DataError
from grood.run.finished import RunError, SeedRun, gradient_space
from grood.method.vocab import GRADIENT_STORE_ARRAYS

log = logging.getLogger("grood.run.apply")

SCORE_THREADS = 1  # the score rule's threads: faiss searches with one thread there


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

def open_detector(path: Path):
    """A run's fitted detector from the pickle-free store; a legacy pickle is refused, never opened."""
    from grood.detectors.store import load_detector

    if path.suffix == ".pkl":
        raise RunError(f"{path} is a pickle (grood's detector format before the pickle-free store): opening "
                       f"it could run whatever code it holds, so grood never does. Fix: re-fit the run's "
                       f"detectors with this grood (snakemake re-runs fit_detector, seconds per detector)")
    det = load_detector(path)
    if getattr(det, "index_shards", 1) > 1:
        raise RunError(f"{path} was fitted with shards.index: {det.index_shards}: it holds no k-NN index (the "
                       f"run's shard jobs searched only its own datasets), so it cannot score new images. Fix: "
                       f"re-fit it with one index (snakemake --config shards='{{index: 1}}' re-runs fit_detector)")
    return det


# ---------------------------------------------------------------------------------- scoring

def score_inputs(run: SeedRun, detector: str, inputs: Inputs, batch_size: int | None = None,
                 device: str = "auto", level: float = 0.95) -> pd.DataFrame:
    """One row per image: ``input``, ``score``, ``decision`` (``in`` when ``score ≥ threshold``),
    ``predicted_class`` (original label) and ``threshold`` (keeps ``level`` of the run's ID test set)."""
    import torch

    from grood.detectors.base import check_finite
    from grood.net.device import select_device
    from grood.net.forward import forward_batches
    from grood.evaluation.metrics import threshold_at_tpr
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint

    if len(inputs) == 0:
        raise DataError("no readable image among the inputs" + _skipped_note(inputs))
    clock = _Clock()
    det = open_detector(run.detector_file(detector))
    threshold = threshold_at_tpr(run.id_test_scores(detector), level)
    dev = select_device(device)
    model, meta = load_checkpoint(run.model, dev)
    spec, classes = InputSpec.from_dict(meta["spec"]), list(meta["classes"])
    batch_size = batch_size or run.feature_batch_size()
    net = model.to(memory_format=torch.channels_last)  # as the features stage
    clock.lap("run loaded (detector, checkpoint, ID test scores)")
    n = len(inputs)
    feats, logits = None, None
    for images, rows in inputs.groups:
        out = forward_batches(net, images, spec, dev, batch_size, name=f"{detector}: network")
        if feats is None:
            feats = np.empty((n, out["features"].shape[1]), out["features"].dtype)
            logits = np.empty((n, out["logits"].shape[1]), out["logits"].dtype)
        feats[rows], logits[rows] = out["features"], out["logits"]
    arrays = {"features": feats, "logits": logits}
    clock.lap(f"network on {n} image(s)")
    if set(det.requires) & set(GRADIENT_STORE_ARRAYS):
        arrays.update(_gradients(run, det.get_params(), feats, logits))
        clock.lap("GROOD gradients")
    if det.needs_network:
        model, _ = load_checkpoint(run.model, dev)  # the score stage's model (not channels-last)
        scores = np.empty(n)
        for images, rows in inputs.groups:
            scores[rows] = det.score(model=model, images=images, spec=spec, device=dev)
    else:
        from grood.search import search_threads

        with search_threads(SCORE_THREADS):  # faiss distances depend on the thread count: as the score jobs
            scores = det.score(**{k: arrays[k] for k in det.requires})
    scores = check_finite(f"{detector} scores", np.asarray(scores, dtype=np.float64))
    clock.lap(f"{detector} scores")
    return pd.DataFrame({"input": inputs.names, "score": scores,
                         "decision": np.where(scores >= threshold, "in", "out"),
                         "predicted_class": np.asarray(classes)[logits.argmax(1)], "threshold": threshold})


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


def _gradients(run: SeedRun, params: dict, feats: np.ndarray, logits: np.ndarray) -> dict[str, np.ndarray]:
    """GROOD's gradient-store arrays of new samples, as the gradients stage computes and stores them
    (its prototypes file, ``wrt``, temperature, row blocks and float32)."""
    from grood.method.gradients import grood_gradients, ncp_softmax
    from grood.storage import load_npz

    space = gradient_space(params)
    protos, _ = load_npz(run.prototypes(params["prototype"]), ["P", "p_ood"])
    if "P" not in protos or "p_ood" not in protos:
        raise RunError(f"{run.prototypes(params['prototype'])} holds no prototypes P / p_ood")
    block = run.chunk_rows(run.gradients(space, "test"), "gradients", default=8192)
    parts: dict[str, list] = {k: [] for k in GRADIENT_STORE_ARRAYS}
    for start in range(0, len(feats), block):
        h, z = feats[start : start + block], logits[start : start + block]
        parts["gradients"].append(grood_gradients(h, z, protos["P"], protos["p_ood"], params["wrt"],
                                                  params["temperature"]))
        dist, pi = ncp_softmax(h, protos["P"], protos["p_ood"], params["temperature"])
        parts["proto_dist"].append(dist[:, -1].astype(np.float32))
        parts["pi_ood"].append(pi[:, -1].astype(np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _skipped_note(inputs: Inputs) -> str:
    if not inputs.skipped:
        return ""
    shown = "; ".join(f"{name}: {why}" for name, why in inputs.skipped[:5])
    more = f" (and {len(inputs.skipped) - 5} more)" if len(inputs.skipped) > 5 else ""
    return f" ({len(inputs.skipped)} skipped: {shown}{more})"
