"""The README's and docs/ pages' commands, run: every `snakemake` command of their shell blocks as
a dry run (offline, seconds), with every YAML file they show written where the commands read it,
and every `python -m` command asked for its --help, so the documentation cannot drift from the
workflow again.

Commands run verbatim (plus ``--dry-run``) in a folder that links the repository's files, so
relative paths such as ``config/test.yaml`` resolve as they would for a user in a checkout; a YAML
block whose first line is ``# <name>.yaml`` is that file.  (Their links and cited paths:
tests/unit/test_docs.py; their `grood` commands: tests/unit/test_cli.py.)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, parse_dry_run

pytestmark = pytest.mark.slow  # starts snakemake
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def commands(text: str, program: tuple[str, ...]) -> list[list[str]]:
    """The commands starting with ``program`` in a page's shell blocks (one per line or ``&&`` part),
    each as ``[NAME=value ..., *words]`` with the variables its block exported before it."""
    found = []
    for block in blocks(text, "bash"):
        exported: list[str] = []
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["export"]:
                    exported += words[1:]
                elif tuple(words[: len(program)]) == program:
                    found.append([*exported, *words])
    return found


def split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``(exported variables, the command)`` of :func:`commands`' words."""
    env = dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))
    return env, words[len(env):]


def yaml_files(text: str) -> dict[str, str]:
    """The page's YAML blocks that say which file they are (``# name.yaml``); every block parses."""
    files = {}
    for block in blocks(text, "yaml"):
        yaml.safe_load(block)
        m = re.fullmatch(r"# (\S+\.ya?ml)", block.splitlines()[0])
        if m:
            files[m.group(1)] = block
    return files


def _rel(page: Path) -> str:
    return str(page.relative_to(REPO))


CASES = [(_rel(page), words) for page in PAGES for words in commands(page.read_text(), ("snakemake",))]
MODULES = sorted({split_env(words)[1][2] for page in PAGES for words in commands(page.read_text(), ("python", "-m"))})


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder that looks like the repository to a user's command (links to its files), with the
    pages' YAML files written into it."""
    root = tmp_path_factory.mktemp("readme")
    for item in REPO.iterdir():
        if item.name not in {".git", ".snakemake", "results", "resources", ".pytest_cache"}:
            (root / item.name).symlink_to(item)
    for page in PAGES:
        for name, text in yaml_files(page.read_text()).items():
            assert not (root / name).exists(), f"{_rel(page)}: {name} is written by two pages"
            (root / name).write_text(text)
    return root


def test_pages_hold_commands():
    assert len(CASES) >= 10, CASES
    used = {w for _, words in CASES for w in words}
    assert {"my_data.yaml", "approximate.yaml", "more_detectors.yaml"} <= used  # the snippets are run
    assert {"benchmarks.bench", "benchmarks.costmodel", "benchmarks.throughput"} <= set(MODULES)


@pytest.mark.parametrize("page, words", CASES, ids=[f"{p}: {' '.join(split_env(w)[1][1:])}" for p, w in CASES])
def test_command_plans(checkout, page, words):
    """With the variables its block exports (a dry run needs none of their folders to exist), and a
    GROOD_DATA_ROOT as the GPU configs ask their user to export."""
    env, words = split_env(words)
    env = {**os.environ, "GROOD_DATA_ROOT": str(checkout / "data"), **env}
    proc = subprocess.run([sys.executable, "-m", *words, "--dry-run"], cwd=checkout, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"{page}: `{shlex.join(words)}` fails:\n{proc.stderr[-4000:]}"
    jobs = parse_dry_run(proc.stdout)
    assert jobs, proc.stdout[-2000:]
    rules = {r for r, _ in jobs}
    if words == ["snakemake", "--cores", "all"]:  # the default benchmark: the job count the pages give
        for claimed_in in PAGES:
            for claim in re.findall(r"(\d+) jobs in all", claimed_in.read_text()):
                assert int(claim) == len(jobs), (_rel(claimed_in), claim, len(jobs))
    if "my_data.yaml" in words:  # merged: the two new sets join the default six, with their id kept
        prepared = {dict(w)["dataset"] for r, w in jobs if r == "prepare_dataset"}
        assert {"my_scans", "my_arrays", "mnist", "fashion_mnist", "uniform_noise"} <= prepared
    if "approximate.yaml" in words:  # the nested index: each approximate detector gets its report
        rated = {dict(w)["detector"] for r, w in jobs if r == "index_quality"}
        assert rated == {"grood_ivf", "grood_pq"}, rated
    if "more_detectors.yaml" in words:  # the suite and the extra detector
        fitted = {dict(w)["detector"] for r, w in jobs if r in ("fit_detector", "fit_local")}
        assert {"grood_k10", "odin", "mahalanobis", "knn"} <= fitted, fitted
    if any(w.startswith("shards=") for w in words):
        assert rules >= {"features_gather", "score_gather"}


@pytest.mark.parametrize("module", MODULES)
def test_python_module_commands_exist(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower(), f"python -m {module} --help:\n{proc.stderr[-2000:]}"
