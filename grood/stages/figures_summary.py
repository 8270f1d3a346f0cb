"""Stage `figures_summary`: the figures over every seed of one benchmark — the AUROC heatmap (the report's first
figure), the near/far chart with the seeds' spread, the training curves — from the metrics table
`evaluate` wrote and each seed's ``train.json``, so a figure change never recomputes a number.

Which figures, from which files, drawn how: the rows of job ``summary`` in
:data:`grood.figures.catalog.FIGURES`."""

from __future__ import annotations

from grood.figures import catalog


def figures_summary_stage(inputs: dict, figures: dict[str, dict], pngs: dict[str, str]) -> dict[str, list]:
    """Draw each figure of ``figures`` (name → its params) from the job's named ``inputs`` into the
    stem of its PNG in ``pngs`` (``.png`` and ``.pdf``); returns figure → written paths."""
    return catalog.draw(inputs, figures, pngs)
