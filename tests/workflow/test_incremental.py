"""Incremental re-runs: a change re-runs exactly what depends on it, nothing more, nothing less.

Proved on a copy of the finished tiny run (``tiny_copy``): a config, data or code change is made,
and a dry run lists the jobs Snakemake would run — a few seconds each.  Expected job sets are
written out in full, so a test fails both when too little re-runs (stale results) and when too
much does (wasted hours on a real benchmark).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, TINY, Job, assert_plan, job, planned, snakemake, write_config
from grood.codeversion import closure_files
from grood.detectors import METHODS, fits_from_arrays, scores_from_arrays

pytestmark = pytest.mark.slow  # every test here starts snakemake

BENCH, SEED, RUN = "tiny", "0", "results/tiny/seed0"
DETECTORS = tuple(TINY["detectors"])  # grood, msp, energy
OODS = tuple(TINY["benchmarks"]["tiny"]["ood"])  # fashion_tiny, gaussian_tiny
GRAD = {"space": "mixup_ood_T1"}  # the gradient space of the tiny config's grood


#: detectors the tests add, by method
ADDED = {"knn": "knn", "react": "react", "gaia_z": "gaia", "grood_cold": "grood"}


def _method(detector: str):
    return METHODS[TINY["detectors"][detector]["method"] if detector in TINY["detectors"] else ADDED[detector]]


def score_job(detector: str, **w) -> Job:
    """A detector's scoring job: rule score_local where the workflow scores it inside the Snakemake
    process (no network, no faiss index: workflow/rules/common.smk), else score."""
    return job("score_local" if scores_from_arrays(_method(detector)) else "score", detector=detector, **w)


def fit_job(detector: str, **w) -> Job:
    """A detector's fitting job: rule fit_local where it is fitted from cached arrays alone (no faiss
    index: workflow/rules/common.smk), else fit_detector."""
    return job("fit_local" if fits_from_arrays(_method(detector)) else "fit_detector", detector=detector, **w)


FIGURE_PARTS = ("train", "test", OODS[0])  # the gradient-space figure's sets (first seed, first near set)


def part_jobs(part: str, detectors=DETECTORS, seed: str = SEED) -> set[Job]:
    """Everything downstream of one part's features (train, test or an OOD set) — without fit_detector.
    The first seed's parts also feed the detector pages and (ID and first near set) the method figures."""
    w = {"bench": BENCH, "seed": seed}
    jobs = {job("features", part=part, **w), job("gradients", part=part, **GRAD, **w)}
    if part != "train":
        jobs |= {score_job(d, part=part, **w) for d in detectors}
        if seed == SEED:
            jobs |= pages(*detectors)
    if seed == SEED and part in FIGURE_PARTS:
        jobs.add(METHOD_FIGURES)
    return jobs


def pages(*detectors: str) -> set[Job]:
    return {job("figures_detector", bench=BENCH, detector=d) for d in detectors}


METHOD_FIGURES = job("figures_method", bench=BENCH)
AGGREGATES = {job("evaluate", bench=BENCH), job("figures_summary", bench=BENCH), job("all")}


def test_finished_run_plans_nothing(tiny_copy):
    """The baseline for every test below: a finished run, copied elsewhere, is up to date."""
    assert_plan(planned(tiny_copy), set())


def test_touching_inputs_reruns_nothing(tiny_copy):
    """Small inputs are compared by checksum: a new mtime with the same bytes re-runs nothing."""
    npz = tiny_copy / "resources" / "data" / "gaussian_tiny.npz"
    assert npz.stat().st_size < 1_000_000
    later = time.time() + 60
    os.utime(npz, (later, later))
    assert_plan(planned(tiny_copy), set())


def test_reordered_config_keys_rerun_nothing(tiny_copy, tmp_path):
    """The same settings with their keys in another order (as a YAML dumper or an editor may write
    them) are the same config.  (The order of detectors and of OOD sets is not reordered: it is the
    order of the result tables' rows and columns.)"""
    def rev(d: dict) -> dict:
        return dict(reversed(list(d.items())))

    def edit(c):
        c["datasets"] = {n: rev(spec) for n, spec in c["datasets"].items()}
        c["detectors"] = {n: rev(spec) for n, spec in c["detectors"].items()}
        for name, bench in c["benchmarks"].items():
            bench["train"] = rev(bench["train"])
            c["benchmarks"][name] = rev(bench)
        for section in ("prototypes", "features", "gradients"):
            c[section] = rev(c[section])
        for key in rev(c):  # the top level too
            c[key] = c.pop(key)
    path = write_config(tmp_path, edit)
    assert path.read_text() != (REPO / "config" / "test.yaml").read_text()
    assert_plan(planned(tiny_copy, path), set())


def test_changed_dataset_params_rerun_only_that_dataset(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["datasets"]["gaussian_tiny"].update(seed=8))
    expected = {job("prepare_dataset", dataset="gaussian_tiny"), *part_jobs("gaussian_tiny"),
                job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_changed_prepared_dataset_contents_rerun_only_its_consumers(tiny_copy):
    """New bytes in one prepared dataset (here: corrupted) re-run its consumers — which then stop
    with an error naming the file (see test_corrupt_prepared_dataset_*) — and nothing else."""
    npz = tiny_copy / "resources" / "data" / "gaussian_tiny.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    expected = {*part_jobs("gaussian_tiny"), job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy), expected)


def test_adding_a_dataset_runs_only_its_jobs(tiny_copy, tmp_path):
    def edit(c):
        c["datasets"]["uniform_tiny"] = {"source": "noise", "kind": "uniform", "n": 100, "seed": 3}
        c["benchmarks"]["tiny"]["ood"]["uniform_tiny"] = "far"
    expected = {job("prepare_dataset", dataset="uniform_tiny"), *part_jobs("uniform_tiny"),
                job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy, write_config(tmp_path, edit)), expected)


def test_unused_dataset_runs_nothing(tiny_copy, tmp_path):
    edit = lambda c: c["datasets"].update(spare={"source": "noise", "kind": "blobs", "n": 10})  # noqa: E731
    assert_plan(planned(tiny_copy, write_config(tmp_path, edit)), set())


def test_adding_a_seed_runs_only_that_seed(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c.update(seeds=[0, 1]))
    w = {"bench": BENCH, "seed": "1"}
    expected = {job("train", **w), job("prototypes", source="mixup", **w),
                *(fit_job(d, **w) for d in DETECTORS),
                *(j for part in ("train", "test", *OODS) for j in part_jobs(part, seed="1")),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_changed_detector_params_rerun_only_its_fit_and_scores(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["detectors"]["grood"].update(k=2))
    w = {"bench": BENCH, "seed": SEED}
    expected = {fit_job("grood", **w),
                *(score_job("grood", part=p, **w) for p in ("test", *OODS)), *pages("grood"),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_adding_a_detector_runs_only_its_jobs(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["detectors"].update(knn={"method": "knn", "k": 5}))
    w = {"bench": BENCH, "seed": SEED}
    expected = {fit_job("knn", **w),
                *(score_job("knn", part=p, **w) for p in ("test", *OODS)), *pages("knn"),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_adding_a_head_detector_runs_only_its_jobs(tiny_copy, tmp_path):
    """ReAct fits on the classifier head: the head's arrays are written once from the checkpoint (rule
    head), its fit job reads them in process, nothing else re-runs."""
    cfg = write_config(tmp_path, lambda c: c["detectors"].update(react={"method": "react"}))
    w = {"bench": BENCH, "seed": SEED}
    expected = {fit_job("react", **w), job("head", **w),
                *(score_job("react", part=p, **w) for p in ("test", *OODS)), *pages("react"),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_adding_a_gaia_detector_reruns_the_scored_parts_features(tiny_copy, tmp_path):
    """GAIA's statistics come from the features jobs of the scored parts (ID test, OOD sets): adding a
    GAIA detector re-runs those and what reads them, never the training part's."""
    cfg = write_config(tmp_path, lambda c: c["detectors"].update(gaia_z={"method": "gaia", "variant": "z"}))
    w = {"bench": BENCH, "seed": SEED}
    expected = {fit_job("gaia_z", **w), *AGGREGATES,
                *(j for part in ("test", *OODS) for j in part_jobs(part, (*DETECTORS, "gaia_z")))}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_changed_training_params_rerun_everything_downstream_of_train(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["benchmarks"]["tiny"]["train"].update(lr=0.04))
    w = {"bench": BENCH, "seed": SEED}
    # msp/energy fit nothing (no inputs): their stored detectors do not depend on the model
    expected = {job("train", **w), job("prototypes", source="mixup", **w),
                fit_job("grood", **w),
                *(j for part in ("train", "test", *OODS) for j in part_jobs(part)), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)  # not the data card: it shows roles, not training


def test_changed_prototype_params_rerun_only_the_prototype_that_uses_them(tiny_copy, tmp_path):
    """The tiny config's GROOD uses the mix-up prototype: a noise-prototype setting re-runs nothing,
    the mix-up λ re-runs that prototype, the gradients built on it and what reads them."""
    cfg = write_config(tmp_path, lambda c: c["prototypes"].update(noise_n=123))
    assert_plan(planned(tiny_copy, cfg), set())
    cfg = write_config(tmp_path, lambda c: c["prototypes"].update(lam=0.4))
    w = {"bench": BENCH, "seed": SEED}
    expected = {job("prototypes", source="mixup", **w),
                *(job("gradients", part=p, **GRAD, **w) for p in ("train", "test", *OODS)),
                fit_job("grood", **w),
                *(score_job("grood", part=p, **w) for p in ("test", *OODS)), *pages("grood"),
                METHOD_FIGURES, *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


def test_changed_user_file_contents_rerun_that_dataset(tiny_copy, tmp_path):
    """An on-disk dataset (source npz) whose file gets new contents is rebuilt (and so are its
    consumers); the check targets the prepared file alone, which is cheap to build."""
    user = tmp_path / "mine.npz"
    rng = np.random.default_rng(0)
    np.savez(user, images=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))

    def edit(c):
        c["datasets"]["mine"] = {"source": "npz", "path": str(user)}
        c["benchmarks"]["tiny"]["ood"]["mine"] = "far"
    cfg = write_config(tmp_path, edit)
    target = "resources/data/mine.npz"
    snakemake(tiny_copy, target, configfile=cfg, timeout=120)
    assert_plan(planned(tiny_copy, cfg, target), set())
    np.savez(user, images=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))  # same size, new pixels
    assert_plan(planned(tiny_copy, cfg, target), {job("prepare_dataset", dataset="mine")})


def _repo_copy(dst: Path) -> Path:
    """The workflow and package sources (not results, data or tests) copied to ``dst``."""
    skip = {".git", "tests", "results", "resources", ".snakemake", ".pytest_cache"}
    for item in REPO.iterdir():
        if item.name in skip or item.name.endswith(".egg-info"):
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, dst / item.name)
    return dst / "Snakefile"


def test_edited_grood_module_reruns_only_the_stages_that_reach_it_and_downstream(tiny_copy, tmp_path):
    """Each rule's code param digests the files its stage module reaches (grood.codeversion): an
    edit to a module that one stage alone reaches re-runs that stage and what reads its outputs,
    nothing else; an edit to grood/__init__.py (every module's parent) re-runs everything.
    (The edits are made in a copy of the repository, run with ``--snakefile`` pointing at it.)"""
    snakefile = _repo_copy(tmp_path / "repo")
    w = {"bench": BENCH, "seed": SEED}
    stages = {p.stem for p in (REPO / "grood" / "stages").glob("*.py")} - {"__init__", "io"}

    def plan_after_editing(rel: str) -> dict:
        path = tmp_path / "repo" / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        try:
            return planned(tiny_copy, None, "--snakefile", str(snakefile))
        finally:
            path.write_bytes(original)

    def reached_by(rel: str) -> set[str]:
        return {s for s in stages if Path(rel) in closure_files(f"grood.stages.{s}", REPO)}

    assert_plan(planned(tiny_copy, None, "--snakefile", str(snakefile)), set())  # the copy alone: nothing

    assert reached_by("grood/evaluation/tables.py") == {"evaluate"}
    assert_plan(plan_after_editing("grood/evaluation/tables.py"), AGGREGATES)  # the metrics, then the summary figures

    figures = {"figures_summary", "figures_detector", "figures_method"}
    assert reached_by("grood/figures/style.py") == figures  # a figure change re-draws, never re-evaluates
    assert_plan(plan_after_editing("grood/figures/style.py"),
                {job("figures_summary", bench=BENCH), *pages(*DETECTORS), METHOD_FIGURES, job("all")})

    assert reached_by("grood/data/card.py") == {"datacard"}
    assert_plan(plan_after_editing("grood/data/card.py"), {job("datacard"), job("all")})

    # the gradient-space figure embeds the prototypes with the pipeline's own closed form; every figure
    # job draws from the one figure catalog, so each reaches what any figure draws with
    assert reached_by("grood/method/gradients.py") == {"gradients", *figures}
    expected = {*(job("gradients", part=p, **GRAD, **w) for p in ("train", "test", *OODS)),
                fit_job("grood", **w),
                *(score_job("grood", part=p, **w) for p in ("test", *OODS)), *pages(*DETECTORS),
                METHOD_FIGURES, *AGGREGATES}
    assert_plan(plan_after_editing("grood/method/gradients.py"), expected)

    assert reached_by("grood/__init__.py") == stages
    everything = planned(tmp_path / "empty")  # what a run from scratch plans: every job
    assert len(everything) == 33  # 28 jobs up to evaluate and `all`, 5 figure jobs
    assert_plan(plan_after_editing("grood/__init__.py"), set(everything))


def test_gradient_temperature_is_a_param_not_parsed_from_the_path(tiny_copy, tmp_path):
    """A GROOD with ``temperature: 1e-05`` (which ``:g`` prints as ``1e-05``: once refused by the
    wildcard constraint) gets its own store named ``mixup_ood_T1e-05``, built at T = 1e-05 exactly
    — the rule passes the value as a param, the path is only its readable identity."""
    from grood.method.gradients import grood_gradients
    from grood.storage import load_npz, read_zarr

    cfg = write_config(tmp_path, lambda c: c["detectors"].update(grood_cold={"method": "grood", "temperature": 1e-05}))
    w = {"bench": BENCH, "seed": SEED}
    space = {"space": "mixup_ood_T1e-05"}
    expected = {*(job("gradients", part=p, **space, **w) for p in ("train", "test", *OODS)),
                fit_job("grood_cold", **w),
                *(score_job("grood_cold", part=p, **w) for p in ("test", *OODS)), *pages("grood_cold"),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)
    store = f"{RUN}/gradients/mixup_ood_T1e-05/test.zarr"
    snakemake(tiny_copy, store, configfile=cfg, timeout=300)
    got, attrs = read_zarr(tiny_copy / store)
    assert attrs["temperature"] == 1e-05
    feats, _ = read_zarr(tiny_copy / RUN / "features" / "test.zarr", ["features", "logits"])
    protos, _ = load_npz(tiny_copy / RUN / "prototypes" / "mixup.npz", ["P", "p_ood"])
    want = grood_gradients(feats["features"], feats["logits"], protos["P"], protos["p_ood"], "ood", 1e-05)
    np.testing.assert_array_equal(got["gradients"], want)
