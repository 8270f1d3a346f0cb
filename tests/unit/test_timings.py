"""`grood timings`: the per-rule table of a finished run's timing files (Snakemake benchmark: files)."""

from pathlib import Path

import pytest

from grood import layout
from grood.run.cli import main
from grood.run.timings import rule_of, rule_timings

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _timing(path: Path, wall: float, cpu: float, rss="100.5") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t{cpu}\n")


def test_rules_are_read_back_from_the_layouts_paths_and_summed(tmp_path, capsys):
    res = tmp_path / "results"
    (res / "mnist" / "seed0").mkdir(parents=True)
    files = {
        ("prepare_dataset", "run", "mnist"): (2.0, 1.5),
        ("train", "seed", ""): (50.0, 80.0),
        ("score", "seed", "grood/test"): (1.0, 0.5),
        ("score", "seed", "knn/fashion"): (3.0, 2.5),
        ("score_local", "seed", "msp/test"): (0.01, 0.0),
        ("figures_detector", "bench", "grood"): (2.0, 1.0),
        ("evaluate", "bench", ""): (4.0, 3.0),
    }
    for (rule, scope, job), (wall, cpu) in files.items():
        values = {"bench": "mnist", "seed": 0}
        template = layout.job_file("benchmark", rule, scope, job)
        values = {k: v for k, v in values.items() if k in layout.fields(template)}
        _timing(Path(layout.fill(template, results=str(res), **values)), wall, cpu,
                rss="NA" if rule == "score_local" else "100.5")
    assert rule_of(res / "benchmarks/mnist/seed0/score/grood/test.tsv", res) == "score"
    assert rule_of(res / "benchmarks/mnist/seed0/train.tsv", res) == "train"
    assert rule_of(res / "benchmarks/prepare_dataset/mnist.tsv", res) == "prepare_dataset"
    table = {r["rule"]: r for r in rule_timings(res)}
    assert set(table) == {"prepare_dataset", "train", "score", "score_local", "figures_detector", "evaluate"}
    assert table["score"]["jobs"] == 2 and table["score"]["wall_s"] == 4.0 and table["score"]["wall_max_s"] == 3.0
    assert table["score"]["cpu_s"] == 3.0
    assert table["score_local"]["max_rss_mb"] is None and table["score_local"]["cpu_s"] is None  # the process's
    assert list(table)[0] == "train"  # longest first
    assert main(["timings", str(res)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| rule | jobs |") and "| total | 7 | 62.0 | | | 88.5 |" in out
    assert "| score_local | 1 | 0.0 | 0.01 | 0.0 | — | — |" in out


def test_a_folder_without_timing_files_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks does not exist"):
        rule_timings(tmp_path)
