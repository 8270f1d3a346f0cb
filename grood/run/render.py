"""Render every figure of a finished benchmark from its results directory (no Snakemake).

``python -m grood.figures results/mnist --out figures/`` (or ``grood figures …``) writes, as PNG and
PDF: ``summary_auroc_heatmap``, ``summary_near_far``, ``detector_<name>`` (one per detector),
``method_gradient_space``, ``method_mixup`` and ``training_curves``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from grood.figures import load
from grood.run.finished import BenchRun

log = logging.getLogger(__name__)


def render_all(bench_dir, out_dir, data_dir=None, seed: int | None = None, ood: str | None = None,
               detectors: list[str] | None = None) -> dict[str, list[Path]]:
    """Every figure of the benchmark at ``bench_dir`` into ``out_dir``; per-detector and method
    figures use ``seed`` (default: the first), the method figure the OOD set ``ood`` (default: the
    first near-OOD set). Returns figure name → written paths; each figure's time is logged."""
    from grood.figures.detector_page import detector_page
    from grood.figures.gradient_space import gradient_space_figure
    from grood.figures.mixup import mixup_examples, mixup_figure
    from grood.figures.summary import auroc_heatmap, detector_order, near_far_chart
    from grood.figures.training_curves import training_curves

    bench = BenchRun.open(bench_dir)
    out = Path(out_dir)
    long = load.metrics_table(bench)
    groups = load.ood_groups(long)
    runs = {r.seed: r for r in bench.seeds()}
    if not runs:
        raise FileNotFoundError(f"{bench.root} holds no seed directory with a model.pt")
    seed = min(runs) if seed is None else seed
    if seed not in runs:
        raise ValueError(f"seed {seed} is not in {bench.root}; it holds seeds {sorted(runs)}")
    run = runs[seed]
    order = detector_order(long)
    name = bench.name
    written: dict[str, list[Path]] = {}

    def timed(key, draw):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            written[key] = draw()
        finally:
            log.info("figure %s: %.1f s (%.1f s CPU)", key, time.perf_counter() - t0, time.process_time() - c0)

    timed("summary_auroc_heatmap", lambda: auroc_heatmap(long, out / "summary_auroc_heatmap", name, order))
    timed("summary_near_far", lambda: near_far_chart(long, out / "summary_near_far", name, order))
    for det in detectors or order:
        id_scores, ood_scores = load.detector_scores(run, det, list(groups))
        timed(f"detector_{det}", lambda: detector_page(det, id_scores, ood_scores, groups, out / f"detector_{det}",
                                                        f"{name}, seed {seed}"))
    spaces = load.gradient_spaces(run)
    if spaces:
        ood = ood or next((o for o, g in groups.items() if g == "near"), next(iter(groups)))
        sets, P, p_ood, wrt, temp = load.projection_sets(run, spaces[0], ood)
        timed("method_gradient_space", lambda: gradient_space_figure(
            sets, P, p_ood, out / "method_gradient_space", wrt, temp, f"{name}, seed {seed}, {spaces[0]}"))
    else:
        log.info("no gradient store in %s: no gradient-space figure", run.root)
    if run.prototypes("mixup").is_file():
        def mixup():
            m = load.mixup_inputs(bench, run, data_dir=data_dir)
            ex = mixup_examples(m["model"], m["images"], m["Q"], m["layer"], m["lam"], m["spec"])
            return mixup_figure(m["images"], m["labels"], ex, m["Q"], m["lam"], m["layer"],
                                out / "method_mixup", f"{name}, seed {seed}", m["classes"])
        timed("method_mixup", mixup)
    hist, acc = load.histories(bench)
    if hist:
        timed("training_curves", lambda: training_curves(hist, out / "training_curves", acc, name))
    return written
