"""Metrics tables from per-sample scores: long CSV, and the OpenOOD-v1.5-shaped summary (mean ± std)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from grood.evaluation.metrics import METRICS, ood_metrics


@dataclass(frozen=True)
class ScoreSet:
    """Where one detector's scores of one seed live: ID test scores and each OOD set's."""

    seed: int
    detector: str
    id_scores: np.ndarray
    ood_scores: dict[str, np.ndarray]


def metrics_long(score_sets: list[ScoreSet], groups: dict[str, str], id_accuracy: dict[int, float],
                 flags: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per (seed, detector, OOD set) with every metric; ``groups`` maps OOD set → near/far."""
    flags = flags or {}
    rows = []
    for s in score_sets:
        for ood, scores in s.ood_scores.items():
            rows.append({
                "seed": s.seed, "detector": s.detector, "ood": ood, "group": groups[ood],
                "n_id": len(s.id_scores), "n_ood": len(scores),
                **ood_metrics(s.id_scores, scores),
                "id_accuracy": id_accuracy[s.seed],
                **flags.get(s.detector, {}),
            })
    return pd.DataFrame(rows)


def with_group_means(long: pd.DataFrame) -> pd.DataFrame:
    """Add per-seed ``near`` and ``far`` rows: unweighted means over the group's datasets (as OpenOOD)."""
    means = (long.groupby(["seed", "detector", "group"], as_index=False)[list(METRICS)].mean()
             .assign(ood=lambda d: d["group"]))
    return pd.concat([long, means], ignore_index=True)


def summary(long: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Mean and std over seeds for each (detector, OOD set or group), metrics as columns."""
    full = with_group_means(long)
    agg = full.groupby(["detector", "ood"])[list(METRICS)].agg(["mean", "std"])
    agg.columns = [f"{m}_{stat}" for m, stat in agg.columns]
    agg = agg.reset_index()
    agg["n_seeds"] = full.groupby(["detector", "ood"]).size().values
    if order:
        agg["detector"] = pd.Categorical(agg["detector"], order, ordered=True)
        agg = agg.sort_values(["detector", "ood"])
    return agg


def per_seed_table(long: pd.DataFrame, metric: str = "auroc", order: list[str] | None = None) -> pd.DataFrame:
    """Rows detectors, columns ``near``/``far`` of each seed: the spread behind every mean ± std."""
    full = with_group_means(long)
    groups = [g for g in ("near", "far") if g in set(full["ood"])]
    sub = full[full["ood"].isin(groups)]
    table = sub.pivot_table(index="detector", columns=["ood", "seed"], values=metric, aggfunc="first", sort=False)
    table = table.reindex(columns=[(g, s) for g in groups for s in sorted(sub["seed"].unique())])
    table.columns = [f"{g} s{s}" for g, s in table.columns]
    if order:
        table = table.reindex([d for d in order if d in table.index])
    return (100 * table).round(2)


def _fmt(mean: float, std: float, scale: float = 100.0) -> str:
    if np.isnan(std):
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} ± {scale * std:.2f}"


def openood_table(summ: pd.DataFrame, oods: list[str], metric: str) -> pd.DataFrame:
    """Rows detectors, columns each OOD set then ``near`` and ``far``; cells ``mean ± std`` in %."""
    cols = list(oods) + [g for g in ("near", "far") if g in set(summ["ood"])]
    table = {}
    for det, sub in summ.groupby("detector", observed=True, sort=False):
        by = sub.set_index("ood")
        table[det] = {c: _fmt(by.loc[c, f"{metric}_mean"], by.loc[c, f"{metric}_std"]) if c in by.index else ""
                      for c in cols}
    return pd.DataFrame.from_dict(table, orient="index", columns=cols).rename_axis("detector")


# --------------------------------------------------------------------------- sampling uncertainty

#: the columns the bootstrap adds to a summary row (after every metric's ``_ci_low``/``_ci_high``)
PAIRED_COLUMNS = ("diff_to_best", "diff_ci_low", "diff_ci_high", "tied_with_best", "best")


def bootstrap_tables(score_sets: list[ScoreSet], groups: dict[str, str], n_resamples: int, seed: int,
                     level: float = 0.95, threads: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sampling uncertainty of every metric (:mod:`grood.evaluation.uncertainty`): one bootstrap of
    every (seed, detector) on the same drawn resamples (they score the same test files), then

    - per (seed, detector, OOD set): ``{m}_ci_low``, ``{m}_ci_high`` (percentile interval);
    - per (detector, OOD set or near/far mean) over seeds: ``{m}_ci_low``, ``{m}_ci_high``
      (:func:`~grood.evaluation.uncertainty.combine_seeds`, clipped to [0, 1]) and the paired test of
      the AUROC against the best detector (``diff_to_best`` and its interval, ``tied_with_best``,
      ``best``: the best detector's name).

    Returns the two tables, keyed by ``seed, detector, ood`` and ``detector, ood``.
    """
    from grood.evaluation import uncertainty as U

    seeds = sorted({s.seed for s in score_sets})
    detectors = list(dict.fromkeys(s.detector for s in score_sets))
    by = {(s.seed, s.detector): s for s in score_sets}
    missing = [(sd, d) for sd in seeds for d in detectors if (sd, d) not in by]
    if missing:
        raise ValueError(f"the bootstrap pairs every (seed, detector); scores missing for {missing}")
    rows = [by[(sd, d)] for sd in seeds for d in detectors]
    oods = list(rows[0].ood_scores)
    grouped = {g: [o for o in oods if groups[o] == g] for g in ("near", "far")}
    grouped = {g: members for g, members in grouped.items() if members}
    boot = U.bootstrap_metrics(np.stack([r.id_scores for r in rows]),
                               {o: np.stack([r.ood_scores[o] for r in rows]) for o in oods},
                               groups=grouped, n_resamples=n_resamples, seed=seed, threads=threads)
    n_det = len(detectors)
    per_seed = [boot.take(range(i * n_det, (i + 1) * n_det)) for i in range(len(seeds))]
    long_rows = []
    for sd, b in zip(seeds, per_seed):
        iv = b.intervals(level)
        for d, det in enumerate(detectors):
            for j, ood in enumerate(oods):
                long_rows.append({"seed": sd, "detector": det, "ood": ood,
                                  **{f"{m}{end}": float(iv[f"{m}{end}"][d, j]) for m in boot.metrics
                                     for end in ("_ci_low", "_ci_high")}})
    summ = U.seed_summary(per_seed, level)
    summ_rows = []
    for d, det in enumerate(detectors):
        for j, ood in enumerate(boot.sets):
            summ_rows.append({"detector": det, "ood": ood,
                              **{f"{m}{end}": float(summ[f"{m}{end}"][d, j]) for m in boot.metrics
                                 for end in ("_ci_low", "_ci_high")},
                              "diff_to_best": float(summ["diff_to_best"][d, j]),
                              "diff_ci_low": float(summ["diff_ci_low"][d, j]),
                              "diff_ci_high": float(summ["diff_ci_high"][d, j]),
                              "tied_with_best": bool(summ["tied_with_best"][d, j]),
                              "best": detectors[int(summ["best"][j])]})
    return pd.DataFrame(long_rows), pd.DataFrame(summ_rows)


def with_columns(table: pd.DataFrame, extra: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``table`` with ``extra``'s other columns appended, matched on ``keys``: its own columns and row
    order untouched (the columns a run wrote before the bootstrap stay as they were)."""
    extra = extra.astype({k: table[k].dtype for k in keys})  # e.g. the summary's ordered detectors
    merged = table.merge(extra, on=keys, how="left", validate="one_to_one", sort=False)
    if len(merged) != len(table) or merged[[c for c in extra.columns if c not in keys]].isna().any().any():
        raise ValueError(f"the bootstrap's rows do not match the table's on {keys}")
    merged.index = table.index
    return merged


def marked_table(summ: pd.DataFrame, oods: list[str], metric: str = "auroc", latex: bool = False) -> pd.DataFrame:
    """:func:`openood_table` with the paired test's marks: the best detector of each column in bold,
    a detector the paired test cannot tell from it marked ``≈`` (``$\\approx$`` in LaTeX)."""
    table = openood_table(summ, oods, metric)
    by = summ.set_index(["detector", "ood"])
    for det in table.index:
        for col in table.columns:
            if (det, col) not in by.index or not table.loc[det, col]:
                continue
            row = by.loc[(det, col)]
            cell = table.loc[det, col]
            if row["best"] == det:
                table.loc[det, col] = f"\\textbf{{{cell}}}" if latex else f"**{cell}**"
            elif bool(row["tied_with_best"]):
                table.loc[det, col] = f"{cell} $\\approx$" if latex else f"{cell} ≈"
    return table


def interval_table(summ: pd.DataFrame, oods: list[str], metric: str = "auroc", scale: float = 100.0) -> pd.DataFrame:
    """Rows detectors, columns as :func:`openood_table`; cells the interval over seeds and samples,
    ``[low, high]`` in %."""
    cols = list(oods) + [g for g in ("near", "far") if g in set(summ["ood"])]
    table = {}
    for det, sub in summ.groupby("detector", observed=True, sort=False):
        by = sub.set_index("ood")
        table[det] = {c: f"[{scale * by.loc[c, f'{metric}_ci_low']:.2f}, {scale * by.loc[c, f'{metric}_ci_high']:.2f}]"
                      if c in by.index else "" for c in cols}
    return pd.DataFrame.from_dict(table, orient="index", columns=cols).rename_axis("detector")
