"""Each rule's code digest covers every grood file its stage runs, and nothing a stage cannot reach.

The closure (:mod:`grood.codeversion`) is read from the source with ``ast``; the reference here is
Python's own import system: a subprocess imports each stage module and then executes every import
statement found in the grood modules it loaded (those inside functions too, in their module's
namespace), until no new grood module appears — the grood modules in ``sys.modules`` are then
exactly what the stage can run.  The rerun behaviour itself is proved by a dry run in
tests/test_incremental.py; the wiring (one rule, one script, one stage module) by a test below.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from grood.codeversion import closure, closure_files, code_digest

RULES_DIR = REPO / "workflow" / "rules"
SCRIPTS_DIR = REPO / "workflow" / "scripts"


def _rules(in_process: bool) -> dict[str, str]:
    """Every rule and checkpoint of the workflow (but ``all``) → the text of its definition: those
    that run a script, or (``in_process``) those with a ``run:`` block instead (score_local and
    fit_local run a stage; tuned_detector and tuned_scores copy a file)."""
    rules = {}
    for smk in sorted(RULES_DIR.glob("*.smk")):
        text = smk.read_text()
        for m in re.finditer(r"^( *)(?:rule|checkpoint) (\w+):\n((?:\1 +.*\n|\s*\n)*)", text, re.M):
            if bool(re.search(r"^\s+run:", m.group(3), re.M)) == in_process:
                rules[m.group(2)] = m.group(3)
    return rules


RULES = _rules(in_process=False)
RUN_BLOCK_RULES = _rules(in_process=True)
#: rules that run a stage inside the Snakemake process (a `run:` block, no script): rule → its stage
IN_PROCESS = {"score_local": "score", "fit_local": "fit_detector"}
STAGES = sorted(set(RULES) - set(IN_PROCESS))

_REFERENCE = textwrap.dedent("""
    import ast, importlib.abc, importlib.machinery, json, sys, types
    sys.path.insert(0, sys.argv[1])

    def ours(name):
        return name == "grood" or name.startswith("grood.")

    # third-party packages (torch, faiss, zarr, matplotlib, ...) are stood in for by modules whose
    # every attribute is an inert object, so the reference takes a second, not minutes: which grood
    # modules get loaded is decided by the grood modules alone, which run for real
    class Inert:
        def __call__(self, *args, **kwargs):
            return self
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return self
        def __getitem__(self, key):
            return self
        def __mro_entries__(self, bases):
            return (object,)

    class StandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if ours(name) or top in sys.stdlib_module_names or top in ("numpy", "_distutils_hack"):
                return None
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__getattr__ = lambda attr: Inert()
            return module
        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, StandIns())

    def loaded():
        return {n for n, m in sys.modules.items() if ours(n) and m is not None}

    result = {}
    for stage in sys.argv[2:]:
        for name in list(sys.modules):
            if ours(name):
                del sys.modules[name]
        __import__(stage)
        done = set()
        while loaded() - done:
            for name in sorted(loaded() - done):
                done.add(name)
                module = sys.modules[name]
                assert module.__file__.startswith(sys.argv[1]), (name, module.__file__)
                for node in ast.walk(ast.parse(open(module.__file__).read())):
                    if isinstance(node, ast.Import) and any(ours(a.name) for a in node.names) or \\
                            isinstance(node, ast.ImportFrom) and (node.level or ours(node.module or "")):
                        exec(compile(ast.Module([node], []), module.__file__, "exec"), dict(vars(module)))
        result[stage] = sorted(loaded())
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def python_loads() -> dict[str, list[str]]:
    """Stage module → the grood modules Python loads for it (one subprocess for all stages; grood
    modules are dropped from ``sys.modules`` between stages, so each stage starts afresh)."""
    proc = subprocess.run([sys.executable, "-c", _REFERENCE, str(REPO), *(f"grood.stages.{s}" for s in STAGES)],
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stage", STAGES)
def test_digest_covers_exactly_what_python_loads(stage, python_loads):
    """Every grood module a stage imports, directly or not, lazily or not, is in its digest, and the
    digest holds nothing Python would not load (no needless re-runs)."""
    assert closure(f"grood.stages.{stage}", REPO) == python_loads[f"grood.stages.{stage}"]


def test_known_defects_stay_fixed():
    """The hand-kept lists the digests replaced had drifted: these files were missing."""
    files = {s: {p.as_posix() for p in closure_files(f"grood.stages.{s}", REPO)} for s in STAGES}
    assert {"grood/net/forward.py", "grood/net/device.py"} <= files["prototypes"]
    assert {"grood/net/device.py", "grood/net/progress.py"} <= files["train"]
    assert {"grood/detectors/base.py", "grood/storage/shards.py", "grood/detectors/store.py"} <= files["score"]
    assert "grood/detectors/store.py" in files["fit_detector"]  # the pickle-free detector files
    # the detectors' streamed reading and index build (lazy imports of grood.search)
    assert {"grood/storage/chunks.py", "grood/search/build.py", "grood/search/spec.py"} <= files["fit_detector"]
    assert {"grood/search/quality.py", "grood/search/exact.py", "grood/detectors/store.py"} <= files["index_quality"]
    for stage in STAGES:  # every module's parent, and the stages' package (job logging)
        assert {"grood/__init__.py", "grood/stages/__init__.py", f"grood/stages/{stage}.py"} <= files[stage]
    assert "grood/evaluation/tables.py" not in files["score"] and "grood/method/gradients.py" not in files["prototypes"]
    # figures and metrics apart: a figure change never recomputes metrics, nor a metrics change a figure
    figure_stages = [s for s in STAGES if s.startswith("figures_")]
    assert sorted(figure_stages) == ["figures_detector", "figures_method", "figures_summary"]
    assert not any(f.startswith("grood/figures/") for f in files["evaluate"])
    for stage in figure_stages:
        assert "grood/figures/style.py" in files[stage] and "grood/evaluation/tables.py" not in files[stage], stage


def test_closure_follows_every_import_form(tmp_path):
    """Lazy imports, ``from pkg import submodule``, relative imports and the packages on the way."""
    pkg = tmp_path / "grood"
    files = {
        "__init__.py": "",
        "stage.py": "from grood import alpha\n\ndef run():\n    import grood.deep.inner\n",
        "alpha.py": "from grood.sub import helper as h, NAME\n",
        "sub/__init__.py": "NAME = 1\n",
        "sub/helper.py": "from . import sibling\nfrom ..gamma import x\n",
        "sub/sibling.py": "",
        "gamma.py": "x = 1\n",
        "deep/__init__.py": "from .pkg_face import y\n",
        "deep/pkg_face.py": "y = 2\n",
        "deep/inner.py": "import numpy, os\n",
        "unused.py": "",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    assert closure("grood.stage", tmp_path) == [
        "grood", "grood.alpha", "grood.deep", "grood.deep.inner", "grood.deep.pkg_face", "grood.gamma",
        "grood.stage", "grood.sub", "grood.sub.helper", "grood.sub.sibling"]
    (pkg / "gamma.py").unlink()
    with pytest.raises(ModuleNotFoundError, match="grood.gamma"):
        closure("grood.stage", tmp_path)


def test_editing_a_module_changes_the_digests_of_exactly_the_stages_that_reach_it(tmp_path):
    shutil.copytree(REPO / "grood", tmp_path / "grood", ignore=shutil.ignore_patterns("__pycache__"))
    before = {s: code_digest(f"grood.stages.{s}", tmp_path) for s in STAGES}
    assert before == {s: code_digest(f"grood.stages.{s}", REPO) for s in STAGES}  # paths are relative
    for edited in ("grood/evaluation/tables.py", "grood/figures/style.py", "grood/method/gradients.py", "grood/data/card.py", "grood/storage/shards.py",
                   "grood/__init__.py"):
        path = tmp_path / edited
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        changed = {s for s in STAGES if code_digest(f"grood.stages.{s}", tmp_path) != before[s]}
        reach = {s for s in STAGES if Path(edited) in closure_files(f"grood.stages.{s}", tmp_path)}
        assert changed == reach, edited
        path.write_bytes(original)
    assert changed == set(STAGES)  # grood/__init__.py: every module's parent, so everything re-runs


@pytest.mark.parametrize("rule", STAGES)
def test_rule_script_and_stage_share_one_name(rule):
    """Rule `r` runs workflow/scripts/r.py, which imports only grood.stages and grood.stages.r, and
    its code param is the digest of grood/stages/r.py's closure: the walk has no detour."""
    body = RULES[rule]
    assert re.search(rf'^\s+"\.\./scripts/{rule}\.py"$', body, re.M), body
    assert re.search(rf'^\s+code=stage_code\("{rule}"\),$', body, re.M), body
    script = (SCRIPTS_DIR / f"{rule}.py").read_text()
    imports = re.findall(r"^(?:from|import) (\S+)", script, re.M)
    assert imports == ["grood.stages", f"grood.stages.{rule}"], imports
    assert (REPO / "grood" / "stages" / f"{rule}.py").is_file()


@pytest.mark.parametrize("rule", sorted(IN_PROCESS))
def test_in_process_rules_run_their_stage_and_carry_its_digest(rule):
    """An in-process rule is its stage's twin: its run: block imports grood.stages (job logging) and
    grood.stages.<stage> only, and its code param is that stage's digest — so editing the stage
    re-runs both rules' jobs alike."""
    stage = IN_PROCESS[rule]
    body = RUN_BLOCK_RULES[rule]
    assert re.search(rf'^\s+code=stage_code\("{stage}"\),$', body, re.M), body
    assert "script:" not in body and re.search(r"^\s+run:$", body, re.M), body
    imports = re.findall(r"^\s+from (\S+) import", body, re.M)
    assert imports == ["grood.stages", f"grood.stages.{stage}"], imports
    assert "localrule: True" in body


def test_every_script_belongs_to_a_rule():
    assert sorted(p.stem for p in SCRIPTS_DIR.glob("*.py")) == STAGES
    assert sorted(p.stem for p in (REPO / "grood" / "stages").glob("*.py")) == sorted([*STAGES, "__init__", "io"])


def test_pipeline_gathers_every_stage_for_users():
    """grood.pipeline (a convenience for users, used by no script) re-exports every stage function."""
    import importlib

    import grood.pipeline

    for stage in STAGES:
        module = importlib.import_module(f"grood.stages.{stage}")
        assert getattr(grood.pipeline, f"{stage}_stage") is getattr(module, f"{stage}_stage")
