"""Stage `figures_method`: GROOD itself, shown on one seed — its gradient space (a 2-D projection of ID
train, ID test and one OOD set with the class and OOD prototypes) and, when the OOD prototype is
built by targeted mix-up, a few images with their mix-up.

Which figures, from which files, drawn how: the rows of job ``method`` in
:data:`grood.figures.catalog.FIGURES`."""

from __future__ import annotations

from grood.figures import catalog


def figures_method_stage(inputs: dict, figures: dict[str, dict], pngs: dict[str, str]) -> dict[str, list]:
    """Draw each figure of ``figures`` (name → its params) from the job's named ``inputs`` into the
    stem of its PNG in ``pngs`` (``.png`` and ``.pdf``); returns figure → written paths."""
    return catalog.draw(inputs, figures, pngs)
