"""Stage `evaluate`: the metrics tables of one benchmark (its figures: the figures_* stages)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from grood.storage import atomic_path

log = logging.getLogger("grood")

#: the index parameters the approximate-index table shows (blank for a kind that does not read one)
INDEX_COLUMNS = ("nlist", "nprobe", "m", "nbits")


def nearest_prototype_accuracy(test_features_zarr, prototypes_npz) -> float:
    """GROOD's own ID prediction (docs/methods.md §1.5): the nearest class prototype ``argmin_c ‖h − P_c‖``,
    scored against the labels of the ID test set (labels outside the model's classes are skipped)."""
    from grood.method.prototypes import nearest_prototype
    from grood.storage import load_npz, read_zarr

    arrays, _ = read_zarr(test_features_zarr, ["features", "labels"])
    protos, _ = load_npz(prototypes_npz, ["P"])
    known = arrays["labels"] >= 0
    pred = nearest_prototype(arrays["features"][known], protos["P"])
    return float((pred == arrays["labels"][known]).mean())


def index_quality_table(reports: list[dict]):
    """One row per (seed, detector, OOD set) of the ``index_quality`` reports (``seed``, ``detector``,
    ``path`` each): the index settings, recall@k and the AUROC change its approximation causes."""
    import json

    import pandas as pd

    from grood.search.kinds import KINDS

    rows = []
    for r in reports:
        rep = json.loads(Path(r["path"]).read_text())
        ix = rep["index"]
        reads = KINDS[ix["kind"]].params  # blank where the kind does not read a parameter
        for ood, part in rep["parts"].items():
            # the detector's own setting first, then each nprobe of the sweep (index_quality.nprobe)
            for setting, result in [(None, part), *((s["nprobe"], s) for s in part.get("nprobe_sweep", []))]:
                values = {name: ix[name] if name in reads else None for name in INDEX_COLUMNS}
                if setting is not None:
                    values["nprobe"] = setting
                rows.append({"seed": int(r["seed"]), "detector": r["detector"], "ood": ood, "index": ix["kind"],
                             **values, "configured": setting is None,
                             "k": part["k"], "queries": part["n_id_queries"] + part["n_ood_queries"],
                             "recall_at_k": result["recall_at_k"], "auroc_exact": result["auroc_exact"],
                             "auroc_approx": result["auroc_approx"],
                             "auroc_change_points": result["auroc_change_points"],
                             "ms_per_query": result.get("ms_per_query")})
    return pd.DataFrame(rows)


def evaluate_stage(bench: str, scores: list[dict], train_summaries: dict[int, str], groups: dict[str, str],
                   flags: dict[str, dict], outputs: dict[str, str],
                   ncp_inputs: dict[int, tuple[str, str]] | None = None,
                   index_quality: list[dict] | None = None, uncertainty: dict | None = None,
                   tuning: list[dict] | None = None, threads: int = 1) -> None:
    """Metrics (long CSV, summary CSV/Markdown/LaTeX) for one benchmark.

    ``scores``: one dict per score file with ``seed``, ``detector``, ``part`` (``test`` or an OOD set)
    and ``path``.  ``outputs`` names: metrics_csv, summary_csv, table_md, table_tex.
    ``ncp_inputs``: per seed, the ID test features and a prototypes file, for GROOD's
    nearest-prototype accuracy beside the head's (when the benchmark runs a GROOD detector).
    ``index_quality``: the reports of detectors with an approximate index (``seed``, ``detector``,
    ``path``), tabulated to ``outputs["index_quality_csv"]`` and a section of the Markdown table.
    ``uncertainty``: ``n_resamples``, ``seed`` (the resampling seed, one for every training seed and
    detector, which pairs them) and ``level`` of the bootstrap (:mod:`grood.evaluation.uncertainty`):
    every metric gains its interval (``{m}_ci_low``, ``{m}_ci_high``; columns appended, the others
    unchanged), the summary the interval over seeds and samples and the paired test against the best
    detector (``tied_with_best``), the Markdown table its marks; ``threads`` run it.
    ``tuning``: the tuning reports of swept detectors (``seed``, ``detector``, ``path``: each a
    ``tuning.csv`` of :mod:`grood.stages.tune`), gathered to ``outputs["tuning_csv"]`` and a section
    of the Markdown table.
    """
    import json

    from grood.evaluation import tables
    from grood.detectors.base import check_finite

    acc = {int(seed): json.loads(Path(p).read_text())["test_accuracy"] for seed, p in train_summaries.items()}
    ncp_acc = {int(seed): nearest_prototype_accuracy(*paths) for seed, paths in (ncp_inputs or {}).items()}
    by_key: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for s in scores:
        by_key.setdefault((int(s["seed"]), s["detector"]), {})[s["part"]] = check_finite(s["path"], np.load(s["path"]))
    sets = [tables.ScoreSet(seed, det, parts.pop("test"), {o: parts[o] for o in groups})
            for (seed, det), parts in by_key.items()]
    detectors = list(dict.fromkeys(s.detector for s in sets))
    long = tables.metrics_long(sets, groups, acc, flags)
    summ = tables.summary(long, order=detectors)
    oods = list(groups)
    boot = uncertainty is not None
    if boot:
        long_ci, summ_ci = tables.bootstrap_tables(sets, groups, int(uncertainty["n_resamples"]),
                                                   int(uncertainty["seed"]), float(uncertainty["level"]), threads)
        long = tables.with_columns(long, long_ci, ["seed", "detector", "ood"])
        summ = tables.with_columns(summ, summ_ci, ["detector", "ood"])
    with atomic_path(outputs["metrics_csv"]) as tmp:
        long.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(outputs["summary_csv"]) as tmp:
        summ.to_csv(tmp, index=False, float_format="%.6f")
    seeds = sorted(acc)
    header = (f"# {bench}: OOD detection results\n\n"
              f"ID test accuracy of the classifier head: {_mean_std(acc, seeds)}"
              + (f"; of GROOD's nearest class prototype: {_mean_std(ncp_acc, seeds)}" if ncp_acc else "")
              + f" (over seeds {seeds}; per seed: "
              + ", ".join(f"{100 * acc[s]:.2f}" + (f" / {100 * ncp_acc[s]:.2f}" if ncp_acc else "")
                          for s in seeds) + ").\n"
              f"Cells: mean ± std over {len(seeds)} seed(s), in %; std is the sample standard deviation "
              f"(ddof=1), blank with one seed. near/far: unweighted means over "
              f"{[o for o in oods if groups[o] == 'near']} / {[o for o in oods if groups[o] == 'far']}.\n"
              f"FPR95 here is `fpr95_id` (OOD accepted at 95% ID kept); `fpr95_ood` is in the CSVs.\n")
    if boot:
        header += uncertainty_caption(uncertainty, len(seeds))
    notes = [f"- `{d}`: " + ", ".join(k.replace("_", " ") for k, v in f.items() if v)
             for d, f in flags.items() if any(f.values())]
    md = [header]
    tex = []
    for metric, label in (("auroc", "AUROC ↑"), ("fpr95_id", "FPR95 ↓"), ("aupr_in", "AUPR-In ↑"),
                          ("aupr_out", "AUPR-Out ↑")):
        if boot and metric == "auroc":
            md.append(f"\n## {label}\n\n{tables.marked_table(summ, oods, metric).to_markdown()}\n")
            md.append(f"\n## AUROC: 95% interval over seeds and test samples\n\n"
                      f"{tables.interval_table(summ, oods, metric).to_markdown()}\n")
            marked = tables.marked_table(summ, oods, metric, latex=True)
            marked.index = [_tex_escape(d) for d in marked.index]
            marked.index.name = "detector"
            tex.append(f"% {label}; \\textbf{{best}}, $\\approx$: tied with the best (paired bootstrap)\n"
                       + marked.to_latex(escape=False) + "\n")
            continue
        table = tables.openood_table(summ, oods, metric)
        md.append(f"\n## {label}\n\n{table.to_markdown()}\n")
        tex.append(f"% {label}\n" + table.to_latex(escape=True) + "\n")
    md.append(f"\n## AUROC per seed (near / far means)\n\n"
              f"{tables.per_seed_table(long, 'auroc', detectors).to_markdown()}\n")
    if index_quality:
        iq = index_quality_table(index_quality)
        with atomic_path(outputs["index_quality_csv"]) as tmp:
            iq.to_csv(tmp, index=False, float_format="%.6f")
        md.append(f"\n## Approximate indexes: what the speed costs\n\n"
                  f"Recall@k of the approximate index against exact search, and the AUROC of the detector's "
                  f"scores with exact and with approximate search (the change in AUROC points), on a seeded sample of ID test and OOD queries "
                  f"(`index_quality.sample` each); rows with `configured` False search the same index probing "
                  f"`index_quality.nprobe` cells instead: choose the detector's `nprobe` where recall and "
                  f"AUROC stop changing.\n\n{iq.to_markdown(index=False, floatfmt='.4f')}\n")
    if tuning:
        tuned = tuning_table(tuning)
        with atomic_path(outputs["tuning_csv"]) as tmp:
            tuned.to_csv(tmp, index=False, float_format="%.6f")
        md.append(tuning_section(tuned))
    if notes:
        md.append("\n## Flags\n\n" + "\n".join(notes) + "\n")
    with atomic_path(outputs["table_md"]) as tmp:
        tmp.write_text("".join(md))
    with atomic_path(outputs["table_tex"]) as tmp:
        tmp.write_text("".join(tex))
    log.info("metrics for %s: %d rows → %s", bench, len(long), outputs["metrics_csv"])


def uncertainty_caption(uncertainty: dict, n_seeds: int) -> str:
    """The header lines that say how the intervals and tie marks were made (methods by name)."""
    from grood.evaluation import uncertainty as U

    level = f"{100 * float(uncertainty['level']):g}%"
    seeds = (f"over the {n_seeds} seeds: {U.SEED_METHOD}" if n_seeds > 1
             else "one seed: the percentile interval itself")
    return (f"Intervals: {level} {U.CI_METHOD_SHORT}, {int(uncertainty['n_resamples'])} resamples, resampling "
            f"seed {int(uncertainty['seed'])} (the same draws for every detector and seed); {seeds}. "
            f"Per (seed, detector, OOD set) in metrics.csv (`<metric>_ci_low/high`), over seeds in summary.csv.\n"
            f"Ties (AUROC tables): {U.PAIRED_METHOD}, combined over seeds as the intervals. **Bold**: the best "
            f"detector of the column; ≈: the {level} interval of its difference to the best holds 0, so the two "
            f"cannot be told apart on these test sets; unmarked: significantly below the best.\n")


def tuning_table(reports: list[dict]):
    """Every swept detector's ``tuning.csv`` (one per seed), concatenated: a row per grid point with its
    validation metric and whether it was chosen."""
    import pandas as pd

    return pd.concat([pd.read_csv(r["path"]) for r in reports], ignore_index=True)


def tuning_section(tuned) -> str:
    """The Markdown section naming each swept detector's chosen grid point per seed."""
    chosen = tuned[tuned["chosen"]]
    rows = [f"| {r.detector} | {r.seed} | `{r.point}` | {100 * r.val_auroc:.2f} | {r.n_points} |"
            for r in chosen.assign(n_points=chosen.apply(
                lambda c: int(((tuned.detector == c.detector) & (tuned.seed == c.seed)).sum()), axis=1)).itertuples()]
    return ("\n## Tuning: the grid point chosen on validation data\n\n"
            "Each swept detector's grid point with the best validation AUROC (ID-validation split against the "
            "OOD-validation sets, mean over the sets; ties: the first point in grid order), per seed; its test "
            "scores are the detector's. Every point's validation AUROC: tuning.csv.\n\n"
            "| detector | seed | chosen point | validation AUROC | points |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def _tex_escape(text: str) -> str:
    return "".join("\\" + c if c in "_&%$#{}" else c for c in str(text))


def _mean_std(values: dict[int, float], seeds: list[int]) -> str:
    """``mean% ± std%`` over seeds (sample std, ddof=1; none with one seed)."""
    v = 100 * np.array([values[s] for s in seeds])
    return f"{v.mean():.2f}%" + (f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else "")
