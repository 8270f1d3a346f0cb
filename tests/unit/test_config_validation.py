"""A bad config fails at validation, before any job runs, with an error naming the key and the fix.

The checks are the workflow's own two steps, called directly (milliseconds each): Snakemake's
``validate`` against workflow/schemas/config.schema.yaml (types, defaults), then
:func:`grood.config.validate` (how the sections refer to each other).  One dry run checks the
wiring: workflow/rules/common.smk runs both and stops before planning any job.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from snakemake.utils import validate as schema_validate
from snakemake_interface_common.exceptions import WorkflowError

import grood.config
from conftest import REPO

TINY = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def problems(edit) -> str:
    """What the workflow would say about the tiny config after ``edit``: '' when it is accepted."""
    cfg = copy.deepcopy(TINY)
    edit(cfg)
    try:
        schema_validate(cfg, str(SCHEMA))
    except WorkflowError as e:
        return str(e)
    return "\n".join(grood.config.validate(cfg))


def _set(path: str, value):
    """An edit that sets cfg[a][b]... = value for a dotted ``path``."""
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


def _both(*edits):
    def edit(cfg):
        for e in edits:
            e(cfg)
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
     _both(_set("datasets.fashion_val", {"source": "fashion_mnist", "max_test": 50}),
           _set("prototypes.ood_val_dataset", "fashion_val")),
     ["prototypes.ood_val_dataset", "'fashion_val'", "same data (source 'fashion_mnist') as 'fashion_tiny'",
      "Fix:"]),
    ("ood-val-not-a-dataset", _set("prototypes.ood_val_dataset", "nowhere"),
     ["prototypes.ood_val_dataset", "'nowhere' is not a dataset", "add it under datasets"]),
    ("ood-val-prototype-without-dataset", _set("detectors.grood_val", {"method": "grood", "prototype": "ood_val"}),
     ["detectors.grood_val.prototype", "set prototypes.ood_val_dataset"]),
    ("unknown-ood-dataset-in-benchmark", _set("benchmarks.tiny.ood.svhn_tiny", "far"),
     ["benchmarks.tiny.ood.svhn_tiny", "not a dataset", "add it under datasets"]),
    ("id-set-also-ood", _set("benchmarks.tiny.ood.mnist_tiny", "near"),
     ["benchmarks.tiny.ood.mnist_tiny", "cannot also be an OOD set"]),
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
    ("detector-param-bool-for-int", _set("detectors.grood.k", True),
     ["detectors.grood.k", "must be an integer", "True"]),
    ("detector-param-bad-value", _set("detectors.energy.temperature", 0),
     ["detectors.energy", "temperature must be > 0"]),
    ("unknown-index-kind", _set("detectors.grood_ivf", {"method": "grood", "index": {"kind": "ivf"}}),
     ["detectors.grood_ivf.index.kind", "must be one of", "'ivf_flat'", "'ivf_pq'"]),
    ("ivf-pq-nbits-out-of-range", _set("detectors.knn_pq", {"method": "knn", "index": {"kind": "ivf_pq", "nbits": 40}}),
     ["detectors.knn_pq.index.nbits", "integer in [1, 16]", "40"]),
    ("index-train-size-not-a-count", _set("detectors.grood_ivf", {"method": "grood", "index": {"kind": "ivf_flat",
                                                                                             "train_size": "many"}}),
     ["detectors.grood_ivf.index.train_size", "positive integer or null", "'many'"]),
    ("nprobe-wrong-type", _set("detectors.grood.index", {"kind": "ivf_flat", "nprobe": 2.5}),
     ["detectors.grood.index.nprobe", "must be an integer", "2.5"]),
    ("index-param-the-kind-does-not-read", _set("detectors.knn_ivf", {"method": "knn", "index": {"kind": "ivf_flat",
                                                                                                "m": 8}}),
     ["detectors.knn_ivf.index.m", "does not read 'm'", "ivf_pq"]),
    ("old-flat-index-form", _set("detectors.grood_ivf", {"method": "grood", "index": "ivf_flat", "nlist": 64}),
     ["detectors.grood_ivf.nlist", "write `index: {kind: ivf_flat, nlist: 64}`"]),
    ("old-index-string", _set("detectors.grood_ivf", {"method": "grood", "index": "ivf_pq"}),
     ["detectors.grood_ivf.index", "one mapping", "`index: {kind: ivf_pq"]),
    ("unknown-prototype-source", _set("detectors.grood.prototype", "mixer"),
     ["detectors.grood.prototype", "'mixer'", "choose one of", "'mixup'"]),
    ("unknown-wrt", _set("detectors.grood.wrt", "weights"),
     ["detectors.grood.wrt", "'weights'", "choose one of", "'pred'"]),
    ("non-positive-gradient-temperature", _set("detectors.grood.temperature", -1.0),
     ["detectors.grood.temperature", "must be > 0", "-1.0"]),
    ("gradient-store-names-collide",
     _set("detectors.grood_t", {"method": "grood", "temperature": 1.0000001}),
     ["detectors.grood_t.temperature", "detectors.grood's", "'mixup_ood_T1'", "use one value for both"]),
    ("unknown-dataset-param", _set("datasets.gaussian_tiny.colour", True),
     ["datasets.gaussian_tiny", "unknown param 'colour' for source 'noise'", "allowed params"]),
    ("unknown-dataset-source", _set("datasets.imagenet", {"source": "imagenet"}),
     ["datasets.imagenet.source", "unknown source 'imagenet'", "choose one of"]),
    ("unknown-top-level-key", _set("epochs", 3),
     ["Additional properties are not allowed", "'epochs'"]),
]


@pytest.mark.parametrize("edit, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_is_refused_naming_the_key_and_the_fix(edit, needles):
    out = problems(edit)
    assert out, "config was accepted"
    for needle in needles:
        assert needle in out, f"{needle!r} missing from the error:\n{out}"


SUITES_FILE = REPO / "config" / "suites.yaml"
#: the benchmark configs of config/ (the suites file beside them is no config)
CONFIGS = sorted(p for p in (REPO / "config").glob("*.yaml") if p != SUITES_FILE)


def test_the_tiny_and_shipped_configs_are_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("GROOD_DATA_ROOT", str(tmp_path))  # config/cifar10.yaml's data folder
    assert problems(lambda cfg: None) == ""
    suites = grood.config.load_suites(SUITES_FILE)
    for path in CONFIGS:
        cfg = yaml.safe_load(path.read_text())
        schema_validate(cfg, str(SCHEMA))
        assert grood.config.validate(grood.config.expand_suites(cfg, suites)) == [], path.name


def test_a_suite_is_taken_whole_and_extended():
    """`detectors: {suite: standard, ...}`: the suite's detectors in its order, then the config's own;
    an entry of the same name replaces the suite's in its place. The default config is the standard
    suite; config/baselines.yaml takes two, in order."""
    suites = grood.config.load_suites(SUITES_FILE)
    standard = list(suites["standard"])
    cfg = {"detectors": {"suite": "standard", "grood_k10": {"method": "grood", "k": 10}, "knn": {"method": "knn"}}}
    got = grood.config.expand_suites(cfg, suites)["detectors"]
    assert list(got) == [*standard, "grood_k10"] and got["knn"] == {"method": "knn"}
    assert suites["standard"]["knn"] == {"method": "knn", "k": 50}  # the suite itself is untouched
    default = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert grood.config.expand_suites(default, suites)["detectors"] == suites["standard"]
    both = yaml.safe_load((REPO / "config" / "baselines.yaml").read_text())
    got = grood.config.expand_suites(both, suites)["detectors"]
    assert got == {**suites["standard"], **suites["baselines"]}
    assert list(got) == [*suites["standard"], *suites["baselines"]]


def test_an_unknown_suite_is_named():
    with pytest.raises(grood.config.ConfigError, match=r"detectors.suite: unknown suite 'standrad'.*'standard'"):
        grood.config.expand_suites({"detectors": {"suite": "standrad"}}, grood.config.load_suites(SUITES_FILE))


def test_all_problems_reported_at_once():
    """Cross-field errors are collected: one run names every bad key, not just the first."""
    def edit(cfg):
        cfg["detectors"]["grood"]["neighbours"] = 5
        cfg["detectors"]["bad"] = {"method": "nearest"}
        cfg["benchmarks"]["tiny"]["ood"]["svhn_tiny"] = "far"
        cfg["prototypes"]["ood_val_dataset"] = "gaussian_tiny"
    out = problems(edit)
    for key in ("detectors.grood.neighbours", "detectors.bad.method", "benchmarks.tiny.ood.svhn_tiny",
                "prototypes.ood_val_dataset"):
        assert key in out, key
    assert len(out.splitlines()) >= 4


def test_distinct_ood_val_set_is_accepted():
    """The overlap check is not over-eager: noise with another seed, or another source, is fine."""
    def edit(cfg):
        cfg["datasets"]["gaussian_val"] = {"source": "noise", "kind": "gaussian", "n": 50, "seed": 8}
        cfg["detectors"]["grood_val"] = {"method": "grood", "prototype": "ood_val"}
        cfg["prototypes"]["ood_val_dataset"] = "gaussian_val"
    assert problems(edit) == ""
    assert "same data" in problems(lambda c: (edit(c), c["datasets"]["gaussian_val"].update(seed=7)))


def test_gradient_stores_that_differ_only_beyond_six_digits_are_the_same_name():
    """T=1e-05 and T=1 are distinct stores (the name keeps the exponent); equal values may share."""
    def edit(cfg):
        cfg["detectors"]["grood_cold"] = {"method": "grood", "temperature": 1e-05}
        cfg["detectors"]["grood_gnorm"] = {"method": "grood_gnorm", "temperature": 1.0}
    assert problems(edit) == ""
    spaces = {d: det.gradient_space for d, det in grood.config.gradient_detectors(
        {**TINY, "detectors": {**TINY["detectors"], "cold": {"method": "grood", "temperature": 1e-05}}}).items()}
    assert spaces == {"grood": "mixup_ood_T1", "cold": "mixup_ood_T1e-05"}


def test_check_raises_one_error_listing_every_problem():
    cfg = copy.deepcopy(TINY)
    cfg["detectors"]["bad"] = {"method": "nearest"}
    cfg["benchmarks"]["tiny"]["id"] = "nowhere"
    schema_validate(cfg, str(SCHEMA))
    with pytest.raises(grood.config.ConfigError) as e:
        grood.config.check(cfg)
    assert str(e.value).startswith("invalid grood config:\n  - ")
    assert "detectors.bad.method" in str(e.value) and "benchmarks.tiny.id" in str(e.value)


def test_existing_but_unreadable_user_data_fails_at_run_time_with_the_file(tmp_path):
    """An on-disk source whose file exists but is not a valid .npz passes validation (the file is
    only read by its job) and fails in prepare_dataset naming the file and the fix."""
    from grood.data import DataError, build_dataset

    bad = tmp_path / "mine.npz"
    bad.write_bytes(b"not a zip")
    assert problems(_set("datasets.mine", {"source": "npz", "path": str(bad)})) == ""
    with pytest.raises(DataError) as e:
        build_dataset("npz", {"path": str(bad)}, tmp_path)
    assert str(bad) in str(e.value) and "Fix:" in str(e.value)
    good = tmp_path / "ok.npz"
    np.savez(good, images=np.zeros((4, 28, 28), np.uint8))
    assert build_dataset("npz", {"path": str(good)}, tmp_path)["x_test"].shape[0] == 4


def test_grood_config_is_torch_free():
    """The Snakemake scheduler imports grood.config, grood.codeversion and grood.method.vocab for every
    run (and instantiates every detector): none of them may pull in torch."""
    import subprocess
    import sys

    code = ("import sys, grood.config, grood.codeversion, grood.method.vocab, grood.detectors;"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"
