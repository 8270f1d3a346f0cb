"""Where every output of a run lives: one path template per output, declared once.

The workflow's rules (``workflow/rules/common.smk``), a finished run's readers
(:mod:`grood.run.finished`), the ``grood`` command and the figures (:mod:`grood.figures.catalog`)
all read these templates; none of them spells a path of its own.  A template is a
:meth:`str.format` string over the fields

``results``, ``resources``
    the results and resources folders (config ``results_dir`` / ``resources_dir``);
``bench``, ``seed``, ``dataset``, ``part``, ``source``, ``space``, ``detector``, ``figure``, ``ext``
    a benchmark, a training seed, a dataset, a part (``train``, ``test``, ``id_val`` or an OOD set),
    an OOD prototype (a source, or a source with a detector's own settings:
    :func:`grood.method.vocab.prototype_name`), a gradient space
    (:func:`grood.method.vocab.gradient_space`), a detector (or a tuning grid's point,
    ``<detector>~<param>=<value>,…``: :mod:`grood.evaluation.tuning`), a figure's stem and its file type;
``shard``, ``shards``
    one row shard of how many.

:func:`fill` formats the fields it is given and leaves the others as ``{name}``: the rules give
``results`` and let Snakemake fill the rest as wildcards; a finished run gives every field.
Torch-free and numpy-free: the Snakemake scheduler reads it.
"""

from __future__ import annotations

import string

BENCH_DIR = "{results}/{bench}"
SEED_DIR = BENCH_DIR + "/seed{seed}"

#: every output, by name → its template
OUTPUTS: dict[str, str] = {
    # prepared datasets, shared by every benchmark
    "dataset": "{resources}/data/{dataset}.npz",
    # the data card of every dataset a benchmark uses
    "datacard_md": "{results}/datacard.md",
    "datacard_csv": "{results}/datacard.csv",
    "datacard_png": "{results}/datacard.png",
    # one benchmark, over every seed
    "metrics_csv": BENCH_DIR + "/metrics.csv",
    "summary_csv": BENCH_DIR + "/summary.csv",
    "table_md": BENCH_DIR + "/results.md",
    "table_tex": BENCH_DIR + "/results.tex",
    "index_quality_csv": BENCH_DIR + "/index_quality.csv",
    "tuning_csv": BENCH_DIR + "/tuning.csv",
    "figure": BENCH_DIR + "/figures/{figure}.{ext}",
    # one seed of a benchmark
    "model": SEED_DIR + "/model.pt",
    "train_json": SEED_DIR + "/train.json",
    # the classifier head z = W h + b as plain arrays, for the detectors fitted on it (ReAct, ASH, …)
    "head": SEED_DIR + "/head.npz",
    "features": SEED_DIR + "/features/{part}.zarr",
    "prototypes": SEED_DIR + "/prototypes/{source}.npz",
    # the mix-up's early-layer class means Q, accumulated by the features pass over the ID training
    # part (a store without Q for every other part: the features rule writes one per part)
    "early_prototypes": SEED_DIR + "/prototypes/early/{part}.zarr",
    "gradients": SEED_DIR + "/gradients/{space}/{part}.zarr",
    "detector": SEED_DIR + "/detectors/{detector}.npz",
    "scores": SEED_DIR + "/scores/{detector}/{part}.npy",
    "index_quality": SEED_DIR + "/index_quality/{detector}.json",
    "tuning": SEED_DIR + "/tuning/{detector}.csv",
    # row shards (temporary: merged into the outputs above by their gather jobs)
    "feature_shard": SEED_DIR + "/shards/features/{part}/{shard}-of-{shards}.zarr",
    "early_shard": SEED_DIR + "/shards/features/{part}/{shard}-of-{shards}.early.npz",
    "score_shard": SEED_DIR + "/shards/scores/{detector}/{part}/{shard}-of-{shards}.npz",
    "index_shard": SEED_DIR + "/shards/index/{detector}/{part}/{shard}-of-{shards}.npz",
}

#: where a job's log and timing file sit: ``<results>/logs|benchmarks/<scope>/<rule>[/<job>]``
SCOPES: dict[str, str] = {"run": "", "bench": "{bench}", "seed": "{bench}/seed{seed}"}

#: a run's detectors written by grood before the pickle-free store: listed, never opened
LEGACY_DETECTOR_SUFFIX = ".pkl"


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, **values) -> str:
    """``template`` with the fields in ``values`` formatted and every other field left as ``{name}``."""
    unknown = set(values) - fields(template)
    if unknown:
        raise KeyError(f"{sorted(unknown)} are not fields of {template!r} (its fields: {sorted(fields(template))})")
    return template.format_map(_Keep(values))


def fields(template: str) -> set[str]:
    """The names of ``template``'s fields."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def pattern(template: str) -> str:
    """``template`` as a glob pattern: every field left matches anything."""
    return fill(template, **{name: "*" for name in fields(template)})


def path(output: str, **values) -> str:
    """The path (or, with fields left out, the template) of ``output``: ``path("scores",
    results="results", bench="mnist", seed=0, detector="grood", part="test")``."""
    if output not in OUTPUTS:
        raise KeyError(f"no output {output!r} in the run layout; outputs: {sorted(OUTPUTS)}")
    return fill(OUTPUTS[output], **values)


def below(directory: str, output: str, **values) -> str:
    """``output``'s template below ``directory`` (``SEED_DIR`` or ``BENCH_DIR``), e.g.
    ``below(SEED_DIR, "features", part="test")`` → ``features/test.zarr``."""
    template = OUTPUTS[output]
    if not template.startswith(directory + "/"):
        raise ValueError(f"output {output!r} ({template}) does not lie below {directory}")
    return fill(template[len(directory) + 1:], **values)


def job_file(kind: str, rule: str, scope: str = "run", job: str = "", **values) -> str:
    """A job's ``log`` (``.log``) or ``benchmark`` (timing, ``.tsv``) file:
    ``<results>/logs/<scope>/<rule>[/<job>].log``; ``job`` names one job of the rule (its wildcards,
    e.g. ``{detector}/{part}``)."""
    folder, ext = {"log": ("logs", ".log"), "benchmark": ("benchmarks", ".tsv")}[kind]
    parts = ["{results}", folder, SCOPES[scope], rule, job]
    return fill("/".join(p for p in parts if p) + ext, **values)


__all__ = ["BENCH_DIR", "OUTPUTS", "SCOPES", "SEED_DIR", "below", "fields", "fill", "job_file", "path", "pattern"]
