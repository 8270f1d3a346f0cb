"""The README's quick start and configuration sections, run: every `snakemake` command of their
shell blocks as a dry run (offline, seconds), with every YAML file they show written where the
commands read it, so the README cannot drift from the workflow again.

Commands run verbatim (plus ``--dry-run``) in a folder that links the repository's files, so
relative paths such as ``config/test.yaml`` resolve as they would for a user in a checkout; a YAML
block whose first line is ``# <name>.yaml`` is that file.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, parse_dry_run

pytestmark = pytest.mark.slow  # starts snakemake
README = (REPO / "README.md").read_text()
SECTIONS = ("Quick start", "Configuration", "GReg and GReg+")


def section(title: str) -> str:
    """A ``## title`` section of the README, its ``###`` subsections included."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def snakemake_commands(text: str) -> list[list[str]]:
    """The `snakemake ...` commands of a section's shell blocks (one per line or ``&&`` part)."""
    commands = []
    for block in blocks(text, "bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "snakemake":
                    commands.append(words)
    return commands


def yaml_files(text: str) -> dict[str, str]:
    files = {}
    for block in blocks(text, "yaml"):
        first = block.splitlines()[0]
        m = re.fullmatch(r"# (\S+\.ya?ml)", first)
        assert m, f"a YAML block of the README does not say which file it is (`# name.yaml`):\n{block}"
        yaml.safe_load(block)  # it parses
        files[m.group(1)] = block
    return files


CASES = [(title, words) for title in SECTIONS for words in snakemake_commands(section(title))]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A folder that looks like the repository to a user's command (links to its files), with the
    README's YAML files written into it."""
    root = tmp_path_factory.mktemp("readme")
    for item in REPO.iterdir():
        if item.name not in {".git", ".snakemake", "results", "resources", ".pytest_cache"}:
            (root / item.name).symlink_to(item)
    for title in SECTIONS:
        for name, text in yaml_files(section(title)).items():
            (root / name).write_text(text)
    return root


def test_sections_hold_commands():
    assert len(CASES) >= 5, CASES
    assert any("my_data.yaml" in words for _, words in CASES)  # the adding-a-dataset snippet is used


@pytest.mark.parametrize("title, words", CASES, ids=[" ".join(w[1:]) for _, w in CASES])
def test_readme_command_plans(checkout, title, words):
    proc = subprocess.run([sys.executable, "-m", *words, "--dry-run"], cwd=checkout, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"README ({title}): `{shlex.join(words)}` fails:\n{proc.stderr[-4000:]}"
    jobs = parse_dry_run(proc.stdout)
    assert jobs, proc.stdout[-2000:]
    if words == ["snakemake", "--cores", "all"]:  # the default benchmark: the job count the README gives
        claimed = re.search(r"(\d+) jobs in all", section("Quick start"))
        assert claimed and int(claimed.group(1)) == len(jobs), (claimed and claimed.group(0), len(jobs))
    if "my_data.yaml" in words:  # merged: the two new sets join the default six, with their id kept
        prepared = {dict(w)["dataset"] for r, w in jobs if r == "prepare_dataset"}
        assert {"my_scans", "my_arrays", "mnist", "fashion_mnist", "uniform_noise"} <= prepared
    if any(w.startswith("shards=") for w in words):
        assert {r for r, _ in jobs} >= {"features_gather", "score_gather"}
