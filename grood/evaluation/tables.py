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
