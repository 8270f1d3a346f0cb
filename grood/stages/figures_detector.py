"""Stage `figures_detector`: one detector's page — score histograms of the ID test set against each OOD set
with the 95%-TPR threshold, and the ROC curves — from one seed's stored scores: one job per detector,
drawn while the other seeds still run.

Which figures, from which files, drawn how: the rows of job ``detector`` in
:data:`grood.figures.catalog.FIGURES`."""

from __future__ import annotations

from grood.figures import catalog


def figures_detector_stage(inputs: dict, figures: dict[str, dict], pngs: dict[str, str]) -> dict[str, list]:
    """Draw each figure of ``figures`` (name → its params) from the job's named ``inputs`` into the
    stem of its PNG in ``pngs`` (``.png`` and ``.pdf``); returns figure → written paths."""
    return catalog.draw(inputs, figures, pngs)
