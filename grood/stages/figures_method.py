"""Stage `figures_method`: GROOD itself, shown on one seed — its gradient space (a 2-D projection of
ID train, ID test and one OOD set with the class and OOD prototypes) and, when the OOD prototype is
built by targeted mix-up, a few images with their mix-up."""

from __future__ import annotations

import logging

log = logging.getLogger("grood")


def figures_method_stage(title: str, stems: dict[str, str], gradient: dict | None = None,
                         mixup: dict | None = None, sample: int = 2000, seed: int = 0) -> None:
    """Draw the figures whose inputs are given.

    ``gradient``: ``features`` and ``gradients`` (set name → store, in drawing order: ID train,
    ID test, the OOD set), ``prototypes`` (the space's prototypes file), ``wrt``, ``temperature``,
    ``space`` (its name, for the title) → ``stems["gradient_space"]``.  ``mixup``: ``model``,
    ``prototypes`` (the mix-up file), ``data`` (the ID dataset) → ``stems["mixup"]``.  ``sample``
    rows per set and ``seed`` fix which points and images are drawn.
    """
    from grood.figures import load

    if gradient is not None:
        from grood.figures.gradient_space import gradient_space_figure

        sets = load.sample_sets(gradient["features"], gradient["gradients"], sample, seed)
        P, p_ood = load.prototypes(gradient["prototypes"])
        gradient_space_figure(sets, P, p_ood, stems["gradient_space"], gradient["wrt"],
                              float(gradient["temperature"]), f"{title}, {gradient['space']}")
        log.info("gradient-space figure → %s", stems["gradient_space"])
    if mixup is not None:
        from grood.figures.mixup import mixup_examples, mixup_figure

        m = load.mixup_inputs_from(mixup["model"], mixup["prototypes"], mixup["data"], seed=seed)
        examples = mixup_examples(m["model"], m["images"], m["Q"], m["layer"], m["lam"], m["spec"])
        mixup_figure(m["images"], m["labels"], examples, m["Q"], m["lam"], m["layer"], stems["mixup"], title,
                     m["classes"])
        log.info("mix-up figure → %s", stems["mixup"])
