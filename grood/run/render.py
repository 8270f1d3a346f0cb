"""Every figure of a finished benchmark, redrawn from its results directory (``grood figures``).

The figures are the rows of :data:`grood.figures.catalog.FIGURES`, drawn by the very functions the
workflow's figure jobs call, from the same files; only the :class:`~grood.figures.catalog.Context`
comes from what the run holds instead of its config: the OOD sets and detectors from its
``metrics.csv``, the gradient space from its gradient stores, the mix-up from its prototypes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from grood.figures import catalog
from grood.run.finished import BenchRun, RunError

log = logging.getLogger(__name__)

#: the gradient space the gradient-space figure shows, when the run holds it (the default GROOD's)
DEFAULT_SPACE = "mixup_ood_T1"


def context(bench: BenchRun, seed: int | None = None, ood: str | None = None, detectors: list[str] | None = None,
            data_dir=None) -> catalog.Context:
    """What the figures of a finished benchmark are drawn from: per-detector and method figures on
    ``seed`` (default: the first), the gradient-space figure on the OOD set ``ood`` (default: the
    first near one), pages of ``detectors`` (default: all, best near-OOD AUROC first)."""
    import pandas as pd
    import zarr

    from grood.figures.summary import detector_order

    long = pd.read_csv(bench.metrics_csv)
    runs = {r.seed: r for r in bench.seeds()}
    if not runs:
        raise FileNotFoundError(f"{bench.root} holds no seed directory with a model.pt")
    seed = min(runs) if seed is None else seed
    if seed not in runs:
        raise ValueError(f"seed {seed} is not in {bench.root}; it holds seeds {sorted(runs)}")
    run = runs[seed]
    spaces = sorted(run.gradient_spaces(), key=lambda s: s != DEFAULT_SPACE)
    gradient = None
    if spaces:
        attrs = dict(zarr.open_group(str(run.gradients(spaces[0], "train")), mode="r").attrs)
        gradient = {"space": spaces[0], "source": Path(attrs["prototypes"]).stem, "wrt": attrs.get("wrt", "ood"),
                    "temperature": float(attrs.get("temperature", 1.0))}
    else:
        log.info("no gradient store in %s: no gradient-space figure", run.root)
    mixup = run.prototypes("mixup").is_file()
    id_data = str(bench.resolve_data(run.feature_attrs("train").get("data", ""), data_dir)) if mixup else None
    return catalog.Context(results=str(bench.root.resolve().parent), bench=bench.name, seeds=tuple(sorted(bench.train_jsons())),
                           seed=seed, groups=dict(zip(long["ood"], long["group"])),
                           detectors=tuple(detectors or detector_order(long)), gradient=gradient, mixup=mixup,
                           id_data=id_data, ood=ood)


def render_all(bench_dir, out_dir, data_dir=None, seed: int | None = None, ood: str | None = None,
               detectors: list[str] | None = None) -> dict[str, list[Path]]:
    """Every figure of the benchmark at ``bench_dir`` into ``out_dir`` (:func:`context` says which);
    returns figure stem → written paths; each figure's time is logged."""
    ctx = context(BenchRun.open(bench_dir), seed, ood, detectors, data_dir)
    out = Path(out_dir)
    written: dict[str, list[Path]] = {}
    for fig in catalog.FIGURES.values():
        for wildcards in fig.instances(ctx):
            stem = fig.stem_of(wildcards)
            inputs = fig.inputs(ctx, wildcards)
            for path in (p for v in inputs.values() for p in ([v] if isinstance(v, str) else v)):
                if not Path(path).exists():
                    raise RunError(f"{path} does not exist: the run lacks an input of figure {stem}")
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                written[stem] = fig.draw(inputs, fig.params(ctx, wildcards), str(out / stem))
            finally:
                log.info("figure %s: %.1f s (%.1f s CPU)", stem, time.perf_counter() - t0, time.process_time() - c0)
    return written


__all__ = ["context", "render_all"]
