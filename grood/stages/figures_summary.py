"""Stage `figures_summary`: the figures over every seed of one benchmark — the AUROC heatmap (the
report's first figure), the near/far chart with the seeds' spread, and the training curves — from
the metrics table `evaluate` wrote and each seed's ``train.json``."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("grood")


def figures_summary_stage(bench: str, metrics_csv, train_summaries: dict[int, str], stems: dict[str, str]) -> None:
    """Draw ``stems["heatmap"]``, ``stems["near_far"]`` and ``stems["training"]`` (each ``.png`` + ``.pdf``)."""
    import pandas as pd

    from grood.figures.load import histories_from
    from grood.figures.summary import auroc_heatmap, detector_order, near_far_chart
    from grood.figures.training_curves import training_curves

    long = pd.read_csv(metrics_csv)
    order = detector_order(long)
    auroc_heatmap(long, stems["heatmap"], bench, order)
    near_far_chart(long, stems["near_far"], bench, order)
    hist, acc = histories_from(train_summaries)
    training_curves(hist, stems["training"], acc, bench)
    log.info("summary figures of %s → %s", bench, Path(stems["heatmap"]).parent)
