"""Where a finished run spent its time: one row per rule from the jobs' timing files
(``<results>/benchmarks/…/<rule>[/<job>].tsv``, Snakemake's ``benchmark:`` files, laid out by
:func:`grood.layout.job_file`)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

COLUMNS = ("rule", "jobs", "wall_s", "wall_mean_s", "wall_max_s", "cpu_s", "max_rss_mb")
#: rules whose jobs run in threads of the Snakemake process: their timing files' CPU time and memory are
#: the whole process's, not the job's, so the table leaves them blank
IN_PROCESS_RULES = frozenset({"score_local", "fit_local"})


def rule_of(timing_file: Path, results: Path) -> str:
    """The rule a timing file belongs to: below ``<results>/benchmarks/``, after the benchmark
    folder (one of ``results``' sub-folders) and the ``seed<N>`` folder, the next name."""
    parts = list(timing_file.relative_to(results / "benchmarks").with_suffix("").parts)
    if len(parts) > 1 and (results / parts[0]).is_dir() and parts[0] not in ("benchmarks", "logs"):
        parts = parts[1:]
    if len(parts) > 1 and re.fullmatch(r"seed\d+", parts[0]):
        parts = parts[1:]
    return parts[0]


def rule_timings(results: str | Path) -> list[dict]:
    """Per rule: jobs, summed / mean / longest wall time, summed CPU time, largest peak RSS — the
    wall times of jobs that ran side by side add up, so the sum is work, not the run's wall time.
    A rule whose jobs ran inside the Snakemake process (``score_local``, ``fit_local``) has no CPU
    time or memory of its own (None): its timing files measure the whole process."""
    results = Path(results)
    root = results / "benchmarks"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: give the results folder of a finished run "
                                f"(the config's results_dir, e.g. results)")
    rows: dict[str, dict] = {}
    for f in sorted(root.rglob("*.tsv")):
        with open(f, newline="") as fh:
            for rec in csv.DictReader(fh, delimiter="\t"):
                row = rows.setdefault(rule_of(f, results), {"jobs": 0, "wall": [], "cpu": 0.0, "rss": 0.0})
                row["jobs"] += 1
                row["wall"].append(float(rec["s"]))
                row["cpu"] += float(rec.get("cpu_time") or 0)
                rss = rec.get("max_rss") or "NA"
                row["rss"] = max(row["rss"], float(rss) if rss != "NA" else 0.0)
    table = [{"rule": rule, "jobs": r["jobs"], "wall_s": round(sum(r["wall"]), 1),
              "wall_mean_s": round(sum(r["wall"]) / len(r["wall"]), 2), "wall_max_s": round(max(r["wall"]), 1),
              "cpu_s": None if rule in IN_PROCESS_RULES else round(r["cpu"], 1),
              "max_rss_mb": None if rule in IN_PROCESS_RULES else round(r["rss"])} for rule, r in rows.items()]
    return sorted(table, key=lambda r: -r["wall_s"])


def markdown(table: list[dict]) -> str:
    """The table as Markdown, with a total row."""
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join("—" if r[c] is None else str(r[c]) for c in COLUMNS) + " |\n" for r in table)
    total = (f"| total | {sum(r['jobs'] for r in table)} | {round(sum(r['wall_s'] for r in table), 1)} | | | "
             f"{round(sum(r['cpu_s'] or 0 for r in table), 1)} | |\n")
    return head + body + total
