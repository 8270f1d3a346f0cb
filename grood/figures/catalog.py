"""Every figure of a benchmark, declared once: one row per figure says which job draws it, its file
stem, its caption and report section, what it is drawn from and how.

The workflow's figure rules (``figures_<job>``: their inputs, outputs, report entries and params),
their stages and the renderer of a finished run (:mod:`grood.run.render`, ``grood figures``) all
read :data:`FIGURES`, so a new figure is one row here, its drawing code and its caption
(``workflow/report/<caption>``).  A row's inputs are paths of the run layout (:mod:`grood.layout`),
found from a :class:`Context`: the config's, in the workflow, or what a finished run holds.

Torch- and matplotlib-free at import (the Snakemake scheduler reads the table): each ``draw``
imports its figure module when it runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grood import layout

log = logging.getLogger(__name__)

#: the jobs that draw figures, in the order they run: ``figures_<job>`` rules and stages
JOBS = ("summary", "detector", "method")
#: rows sampled per set, and the seed that picks them and the mix-up images
SAMPLE, SAMPLE_SEED = 2000, 0


@dataclass(frozen=True)
class Context:
    """What a benchmark's figures are drawn from: where its run lives and what it holds.

    ``seed`` is the one seed the per-seed figures show; ``groups`` maps each OOD set to ``near`` /
    ``far`` in the config's order; ``gradient`` is the gradient space of the gradient-space figure
    (``space``, ``source``, ``wrt``, ``temperature``), None without a GROOD-family detector;
    ``mixup``: a detector uses the mix-up OOD prototype; ``id_data``: the ID dataset's prepared file;
    ``ood``: the gradient-space figure's OOD set (default: the first near set, else the first).
    """

    results: str
    bench: str
    seeds: tuple[int, ...]
    seed: int
    groups: dict[str, str]
    detectors: tuple[str, ...]
    gradient: dict | None = None
    mixup: bool = False
    id_data: str | None = None
    ood: str | None = None

    @property
    def title(self) -> str:
        return f"{self.bench}, seed {self.seed}"

    @property
    def figure_ood(self) -> str:
        return self.ood or next((o for o, g in self.groups.items() if g == "near"), next(iter(self.groups)))

    def bench_path(self, output: str, **values) -> str:
        return layout.path(output, results=self.results, bench=self.bench, **values)

    def seed_path(self, output: str, **values) -> str:
        return layout.path(output, results=self.results, bench=self.bench, seed=self.seed, **values)


Inputs = dict[str, "str | list[str]"]


@dataclass(frozen=True)
class Figure:
    """One figure: drawn by the job ``figures_<job>`` into ``<stem>.png`` and ``.pdf``.

    ``inputs(ctx, wildcards)`` names the files it reads (a path or a list of paths each; the
    figures of one job share a namespace), ``params(ctx, wildcards)`` the small JSON values its
    drawing needs, and ``draw(inputs, params, stem)`` draws it; ``per`` names the wildcard of a
    figure drawn once per value (``detector``), ``applies(ctx)`` whether the run has what it shows.
    """

    job: str
    stem: str
    caption: str
    category: str
    labels: dict[str, str]
    inputs: Callable[[Context, dict], Inputs]
    params: Callable[[Context, dict], dict]
    draw: Callable[[Inputs, dict, str], list]
    applies: Callable[[Context], bool] = field(default=lambda ctx: True)
    per: str | None = None

    def instances(self, ctx: Context) -> list[dict[str, str]]:
        """The wildcards of each copy of the figure ``ctx`` draws: ``[{}]``, one per detector, or none."""
        if not self.applies(ctx):
            return []
        return [{self.per: d} for d in ctx.detectors] if self.per == "detector" else [{}]

    def stem_of(self, wildcards: dict[str, str]) -> str:
        return layout.fill(self.stem, **wildcards)


# ------------------------------------------------------------------------------- how each is drawn

def _metrics_input(ctx: Context, wc: dict) -> Inputs:
    return {"metrics": ctx.bench_path("metrics_csv")}


def _heatmap(inputs: Inputs, params: dict, stem: str) -> list:
    import pandas as pd

    from grood.figures.summary import auroc_heatmap, detector_order

    long = pd.read_csv(inputs["metrics"])
    return auroc_heatmap(long, stem, params["bench"], detector_order(long))


def _near_far(inputs: Inputs, params: dict, stem: str) -> list:
    import pandas as pd

    from grood.figures.summary import detector_order, near_far_chart

    long = pd.read_csv(inputs["metrics"])
    return near_far_chart(long, stem, params["bench"], detector_order(long))


def _training(inputs: Inputs, params: dict, stem: str) -> list:
    from grood.figures.load import histories_from
    from grood.figures.training_curves import training_curves

    hist, acc = histories_from(dict(zip(params["seeds"], inputs["summaries"])))
    return training_curves(hist, stem, acc, params["bench"])


def _detector_inputs(ctx: Context, wc: dict) -> Inputs:
    det = wc["detector"]
    return {"id_scores": ctx.seed_path("scores", detector=det, part="test"),
            "ood_scores": [ctx.seed_path("scores", detector=det, part=o) for o in ctx.groups]}


def _detector_page(inputs: Inputs, params: dict, stem: str) -> list:
    import numpy as np

    from grood.figures.detector_page import detector_page

    def read(path):  # finite: the score stage refuses anything else
        return np.load(path, allow_pickle=False)

    groups = dict(params["groups"])
    return detector_page(params["detector"], read(inputs["id_scores"]),
                         {o: read(p) for o, p in zip(groups, inputs["ood_scores"])}, groups, stem, params["title"])


def _gradient_parts(ctx: Context) -> tuple[str, ...]:
    return ("train", "test", ctx.figure_ood)


def _gradient_inputs(ctx: Context, wc: dict) -> Inputs:
    g = ctx.gradient
    return {"features": [ctx.seed_path("features", part=p) for p in _gradient_parts(ctx)],
            "gradients": [ctx.seed_path("gradients", space=g["space"], part=p) for p in _gradient_parts(ctx)],
            "prototypes": ctx.seed_path("prototypes", source=g["source"])}


def _gradient_params(ctx: Context, wc: dict) -> dict:
    g = ctx.gradient
    return {"sets": ["ID train", "ID test", ctx.figure_ood], "space": g["space"], "wrt": g["wrt"],
            "temperature": g["temperature"], "title": ctx.title}


def _gradient_space(inputs: Inputs, params: dict, stem: str) -> list:
    from grood.figures import load
    from grood.figures.gradient_space import gradient_space_figure

    sets = load.sample_sets(dict(zip(params["sets"], inputs["features"])),
                            dict(zip(params["sets"], inputs["gradients"])), SAMPLE, SAMPLE_SEED)
    P, p_ood = load.prototypes(inputs["prototypes"])
    return gradient_space_figure(sets, P, p_ood, stem, params["wrt"], float(params["temperature"]),
                                 f"{params['title']}, {params['space']}")


def _mixup_inputs(ctx: Context, wc: dict) -> Inputs:
    return {"model": ctx.seed_path("model"), "mixup": ctx.seed_path("prototypes", source="mixup"),
            "early": ctx.seed_path("early_prototypes", part="train"), "data": ctx.id_data}


def _mixup(inputs: Inputs, params: dict, stem: str) -> list:
    from grood.figures.load import mixup_inputs_from
    from grood.figures.mixup import mixup_examples, mixup_figure

    m = mixup_inputs_from(inputs["model"], inputs["mixup"], inputs["data"], inputs["early"], seed=SAMPLE_SEED)
    examples = mixup_examples(m["model"], m["images"], m["Q"], m["layer"], m["lam"], m["spec"])
    return mixup_figure(m["images"], m["labels"], examples, m["Q"], m["lam"], m["layer"], stem, params["title"],
                        m["classes"])


# ----------------------------------------------------------------------------------------- the table

#: every figure, in the report's and the renderer's order
FIGURES: dict[str, Figure] = {
    "summary_auroc_heatmap": Figure(
        "summary", "summary_auroc_heatmap", "summary_auroc_heatmap.rst", "1 Summary", {"figure": "AUROC heatmap"},
        _metrics_input, lambda ctx, wc: {"bench": ctx.bench}, _heatmap),
    "summary_near_far": Figure(
        "summary", "summary_near_far", "summary_near_far.rst", "1 Summary", {"figure": "near / far AUROC per seed"},
        _metrics_input, lambda ctx, wc: {"bench": ctx.bench}, _near_far),
    "detector": Figure(
        "detector", "detector_{detector}", "detector_page.rst", "2 Detectors", {"detector": "{detector}"},
        _detector_inputs, lambda ctx, wc: {"detector": wc["detector"], "groups": dict(ctx.groups), "title": ctx.title},
        _detector_page, per="detector"),
    "method_gradient_space": Figure(
        "method", "method_gradient_space", "gradient_space.rst", "3 Method", {"figure": "GROOD's gradient space"},
        _gradient_inputs, _gradient_params, _gradient_space, applies=lambda ctx: ctx.gradient is not None),
    "method_mixup": Figure(
        "method", "method_mixup", "mixup.rst", "3 Method", {"figure": "targeted mix-up"},
        _mixup_inputs, lambda ctx, wc: {"title": ctx.title}, _mixup, applies=lambda ctx: ctx.mixup),
    "training_curves": Figure(
        "summary", "training_curves", "training_curves.rst", "4 Training", {"figure": "training curves"},
        lambda ctx, wc: {"summaries": [layout.path("train_json", results=ctx.results, bench=ctx.bench, seed=s)
                                       for s in ctx.seeds]},
        lambda ctx, wc: {"bench": ctx.bench, "seeds": list(ctx.seeds)}, _training,
        applies=lambda ctx: bool(ctx.seeds)),
}


def of_job(job: str, ctx: Context) -> dict[str, Figure]:
    """The figures job ``figures_<job>`` draws for ``ctx`` (those that apply), by name."""
    if job not in JOBS:
        raise KeyError(f"no figure job {job!r}; jobs: {JOBS}")
    return {name: fig for name, fig in FIGURES.items() if fig.job == job and fig.applies(ctx)}


def job_inputs(figures: dict[str, Figure], ctx: Context, wildcards: dict) -> Inputs:
    """The named inputs of a job's figures (one namespace: a name two figures use is one file)."""
    merged: Inputs = {}
    for name, fig in figures.items():
        for key, value in fig.inputs(ctx, wildcards).items():
            if merged.setdefault(key, value) != value:
                raise ValueError(f"figure {name!r}: input {key!r} is {value}, another figure of job "
                                 f"{fig.job!r} reads {merged[key]} under that name; rename one")
    return merged


def draw(inputs: Inputs, params: dict[str, dict], pngs: dict[str, str]) -> dict[str, list]:
    """Draw each figure named in ``params`` (figure → its params) from the job's ``inputs`` into the
    stem of its PNG in ``pngs`` (``.png`` and ``.pdf``); returns figure → written paths."""
    written = {}
    for name, fig_params in params.items():
        stem = str(pngs[name]).removesuffix(".png")
        written[name] = FIGURES[name].draw(inputs, fig_params, stem)
        log.info("figure %s → %s", name, Path(stem).name)
    return written


__all__ = ["Context", "FIGURES", "Figure", "JOBS", "draw", "job_inputs", "of_job"]
