"""The README and the docs/ pages point at what exists: every relative link names a file (and, with
``#``, a heading of it), every repository path they cite in backticks exists, and the package cites
its methods where they are (docs/methods.md).  Their commands are run by tests/workflow/test_readme.py."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ROOTS = ("grood", "tests", "workflow", "config", "profiles", "benchmarks", "docs")


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def headings(page) -> set[str]:
    return {anchor(h) for h in re.findall(r"^#+ (.*)$", page.read_text(), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_resolve(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if re.match(r"https?://", target):
            continue
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to {target}: no such file"
        if frag:
            assert frag in headings(dest), f"{page.name}: link to {target}: no such heading in {dest.name}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_cited_paths_exist(page):
    for path in re.findall(rf"`((?:{'|'.join(ROOTS)})/[\w./-]+)`", page.read_text()):
        assert (REPO / path).exists(), f"{page.name} cites {path}, which does not exist"


def test_the_package_cites_its_methods_in_docs():
    sources = [p for root in ("grood", "workflow", "config", "benchmarks") for p in (REPO / root).rglob("*")
               if p.suffix in (".py", ".smk", ".yaml", ".rst")]
    bare = [str(p.relative_to(REPO)) for p in sources
            if re.search(r"(?<!docs/)\bmethods\.md", p.read_text(errors="replace"))]
    assert not bare, f"cite docs/methods.md, not methods.md: {bare}"
    for spec in ("methods.md", "baselines.md"):  # the specification and its post-hoc baselines
        sections = {m for m in re.findall(r"^## (\d+)\.", (REPO / "docs" / spec).read_text(), re.M)}
        for p in sources:
            for first, last in re.findall(rf"docs/{re.escape(spec)} §(\d+)(?:–(\d+))?", p.read_text(errors="replace")):
                for section in filter(None, (first, last)):
                    assert section in sections, f"{p.relative_to(REPO)} cites docs/{spec} §{section}"


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 220, len(lines)
    assert not (REPO / "INTEGRATION.md").exists()
