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
                   index_quality: list[dict] | None = None) -> None:
    """Metrics (long CSV, summary CSV/Markdown/LaTeX) for one benchmark.

    ``scores``: one dict per score file with ``seed``, ``detector``, ``part`` (``test`` or an OOD set)
    and ``path``.  ``outputs`` names: metrics_csv, summary_csv, table_md, table_tex.
    ``ncp_inputs``: per seed, the ID test features and a prototypes file, for GROOD's
    nearest-prototype accuracy beside the head's (when the benchmark runs a GROOD detector).
    ``index_quality``: the reports of detectors with an approximate index (``seed``, ``detector``,
    ``path``), tabulated to ``outputs["index_quality_csv"]`` and a section of the Markdown table.
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
    notes = [f"- `{d}`: " + ", ".join(k.replace("_", " ") for k, v in f.items() if v)
             for d, f in flags.items() if any(f.values())]
    md = [header]
    tex = []
    for metric, label in (("auroc", "AUROC ↑"), ("fpr95_id", "FPR95 ↓"), ("aupr_in", "AUPR-In ↑"),
                          ("aupr_out", "AUPR-Out ↑")):
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
    if notes:
        md.append("\n## Flags\n\n" + "\n".join(notes) + "\n")
    with atomic_path(outputs["table_md"]) as tmp:
        tmp.write_text("".join(md))
    with atomic_path(outputs["table_tex"]) as tmp:
        tmp.write_text("".join(tex))
    log.info("metrics for %s: %d rows → %s", bench, len(long), outputs["metrics_csv"])


def _mean_std(values: dict[int, float], seeds: list[int]) -> str:
    """``mean% ± std%`` over seeds (sample std, ddof=1; none with one seed)."""
    v = 100 * np.array([values[s] for s in seeds])
    return f"{v.mean():.2f}%" + (f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else "")
