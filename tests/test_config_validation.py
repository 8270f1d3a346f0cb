"""A bad config fails at validation, before any job runs, with an error naming the key and the fix.

Each case edits the tiny config, writes it to a temporary file and dry-runs the workflow on it in an
empty directory: the run must fail while the Snakefile is read (schema validation or
``_check_config`` in workflow/rules/common.smk), no job may be planned, nothing may be written.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, snakemake

pytestmark = pytest.mark.slow  # each case starts snakemake (a few seconds)

TINY = yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def _fails_at_validation(tmp_path: Path, edit) -> str:
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "run"
    proc = snakemake(workdir, "--dry-run", configfile=configfile, check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"config was accepted:\n{out[-3000:]}"
    assert "Job stats" not in out and "rule " not in out, f"jobs were planned:\n{out[-3000:]}"
    written = [p for p in workdir.rglob("*") if ".snakemake" not in p.parts] if workdir.exists() else []
    assert not written, written
    return out


def _set(path: str, value):
    """An edit that sets cfg[a][b]... = value for a dotted ``path``."""
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


# (id, edit, strings the error must contain: the key, and what to do)
CASES = [
    ("unknown-detector-method", _set("detectors.knn2", {"method": "nearest"}),
     ["detectors.knn2.method", "'nearest'", "choose one of", "'knn'"]),
    ("seeds-wrong-type", _set("seeds", ["a"]),
     ["seeds", "'a' is not of type 'integer'"]),
    ("threads-wrong-type", _set("threads", "two"),
     ["threads", "'two' is not of type 'integer'"]),
    ("train-epochs-wrong-type", _set("benchmarks.tiny.train.epochs", "one"),
     ["epochs", "'one' is not of type 'integer'"]),
    ("duplicate-seeds", _set("seeds", [0, 1, 0]),
     ["seeds", "non-unique"]),
    ("ondisk-source-without-path", _set("datasets.cifar", {"source": "cifar10"}),
     ["datasets.cifar", "needs param 'path'", "Fix: add `path: ...` under datasets.cifar"]),
    ("ood-val-is-a-test-ood-set", _set("prototypes.ood_val_dataset", "fashion_tiny"),
     ["prototypes.ood_val_dataset", "'fashion_tiny' is an OOD test set of benchmarks.tiny",
      "Fix: choose an OOD-validation dataset that no benchmark uses"]),
    ("ood-val-is-the-id-set", _set("prototypes.ood_val_dataset", "mnist_tiny"),
     ["prototypes.ood_val_dataset", "'mnist_tiny' is an ID set of benchmarks.tiny", "Fix:"]),
    ("ood-val-shares-images-with-a-test-set",
     lambda c: (_set("datasets.fashion_val", {"source": "fashion_mnist", "max_test": 50})(c),
                _set("prototypes.ood_val_dataset", "fashion_val")(c)),
     ["prototypes.ood_val_dataset", "'fashion_val'", "same data (source 'fashion_mnist') as 'fashion_tiny'",
      "Fix:"]),
    ("ood-val-not-a-dataset", _set("prototypes.ood_val_dataset", "nowhere"),
     ["prototypes.ood_val_dataset", "'nowhere' is not a dataset", "add it under datasets"]),
    ("ood-val-prototype-without-dataset", _set("detectors.grood_val", {"method": "grood", "prototype": "ood_val"}),
     ["detectors.grood_val.prototype", "set prototypes.ood_val_dataset"]),
    ("unknown-ood-dataset-in-benchmark", _set("benchmarks.tiny.ood.svhn_tiny", "far"),
     ["benchmarks.tiny.ood.svhn_tiny", "not a dataset", "add it under datasets"]),
    ("unknown-id-dataset-in-benchmark", _set("benchmarks.tiny.id", "mnist_big"),
     ["benchmarks.tiny.id", "'mnist_big' is not a dataset", "add it under datasets"]),
    ("unlabelled-id-set", _set("benchmarks.tiny.id", "gaussian_tiny"),
     ["benchmarks.tiny.id", "has no labels", "choose a labelled dataset"]),
    ("unknown-detector-param", _set("detectors.grood.neighbours", 5),
     ["detectors.grood.neighbours", "unknown param for method 'grood'", "'k'"]),
    ("param-for-paramless-detector", _set("detectors.msp.temperature", 2.0),
     ["detectors.msp.temperature", "takes no params: remove it"]),
    ("detector-param-wrong-type", _set("detectors.grood.k", "one"),
     ["detectors.grood.k", "must be an integer", "'one'"]),
    ("unknown-prototype-source", _set("detectors.grood.prototype", "mixer"),
     ["detectors.grood.prototype", "'mixer'", "choose one of", "'mixup'"]),
    ("unknown-dataset-param", _set("datasets.gaussian_tiny.colour", True),
     ["datasets.gaussian_tiny", "unknown param 'colour' for source 'noise'", "allowed params"]),
    ("unknown-dataset-source", _set("datasets.imagenet", {"source": "imagenet"}),
     ["datasets.imagenet.source", "unknown source 'imagenet'", "choose one of"]),
    ("unknown-top-level-key", _set("epochs", 3),
     ["Additional properties are not allowed", "'epochs'"]),
]


@pytest.mark.parametrize("edit, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_fails_before_any_job(tmp_path, edit, needles):
    out = _fails_at_validation(tmp_path, edit)
    for needle in needles:
        assert needle in out, f"{needle!r} missing from the error:\n{out[-3000:]}"


def test_all_problems_reported_at_once(tmp_path):
    """Cross-field errors are collected: one run names every bad key, not just the first."""
    def edit(cfg):
        cfg["detectors"]["grood"]["neighbours"] = 5
        cfg["detectors"]["bad"] = {"method": "nearest"}
        cfg["benchmarks"]["tiny"]["ood"]["svhn_tiny"] = "far"
        cfg["prototypes"]["ood_val_dataset"] = "gaussian_tiny"
    out = _fails_at_validation(tmp_path, edit)
    for key in ("detectors.grood.neighbours", "detectors.bad.method", "benchmarks.tiny.ood.svhn_tiny",
                "prototypes.ood_val_dataset"):
        assert key in out, key


def test_distinct_ood_val_set_is_accepted(tmp_path):
    """The overlap check is not over-eager: noise with another seed, or another source, is fine."""
    def edit(cfg):
        cfg["datasets"]["gaussian_val"] = {"source": "noise", "kind": "gaussian", "n": 50, "seed": 8}
        cfg["detectors"]["grood_val"] = {"method": "grood", "prototype": "ood_val"}
        cfg["prototypes"]["ood_val_dataset"] = "gaussian_val"
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path / "run", "--dry-run", configfile=configfile, timeout=120)
    assert "prototypes" in proc.stdout and "ood_val" in proc.stdout


def test_existing_but_unreadable_user_data_fails_at_run_time_with_the_file(tmp_path):
    """An on-disk source whose file exists but is not a valid .npz passes validation (the file is
    only read by its job) and fails in prepare_dataset naming the file and the fix."""
    from grood.data import DataError, build_dataset

    bad = tmp_path / "mine.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError) as e:
        build_dataset("npz", {"path": str(bad)}, tmp_path)
    assert str(bad) in str(e.value) and "Fix:" in str(e.value)
    good = tmp_path / "ok.npz"
    np.savez(good, images=np.zeros((4, 28, 28), np.uint8))
    assert build_dataset("npz", {"path": str(good)}, tmp_path)["x_test"].shape[0] == 4
