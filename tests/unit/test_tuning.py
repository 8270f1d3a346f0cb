"""Tuning on validation data (grood.evaluation.tuning, grood.stages.tune, the config checks): grid
points as detectors of their own, the choice, the validation data that must never be a test set, the
ID-validation hold-out, and GROOD's own prototype settings (prototype variants, the share of training
data).  The workflow side (a dry run after adding a grid point): tests/workflow/test_tuning.py."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate as schema_validate

import grood.config
from conftest import REPO
from grood.detectors import check_detector, make_detector
from grood.evaluation import tuning
from grood.method import vocab

TINY = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def tuned_tiny(**detectors) -> dict:
    """config/test.yaml with validation data (a 20% ID hold-out, a Bernoulli-noise OOD-validation
    set) and ``detectors`` added."""
    cfg = copy.deepcopy(TINY)
    cfg["datasets"]["bernoulli_val"] = {"source": "noise", "kind": "bernoulli", "n": 200, "seed": 8}
    cfg["benchmarks"]["tiny"].update(id_val={"fraction": 0.2}, ood_val=["bernoulli_val"])
    cfg["detectors"].update(detectors)
    schema_validate(cfg, str(SCHEMA))
    return cfg


# ------------------------------------------------------------------------------------ grid points


def test_points_are_named_by_their_swept_values_in_grid_order():
    pts = tuning.points("knn", {"method": "knn", "sweep": {"k": [5, 1, 50]}})
    assert [p.name for p in pts] == ["knn~k=5", "knn~k=1", "knn~k=50"]
    assert [p.params for p in pts] == [{"k": 5}, {"k": 1}, {"k": 50}]
    odin = tuning.points("odin", {"method": "odin", "batch_size": 64,
                                  "sweep": {"temperature": [1, 1000], "epsilon": [0.0, 0.0014]}})
    assert [p.name for p in odin] == ["odin~temperature=1,epsilon=0", "odin~temperature=1,epsilon=0.0014",
                                      "odin~temperature=1000,epsilon=0", "odin~temperature=1000,epsilon=0.0014"]
    assert all(p.params["batch_size"] == 64 for p in odin)  # the entry's other params hold at every point


def test_points_that_cannot_differ_are_one_and_a_list_of_grids_is_their_union():
    """A GROOD prototype setting its source does not read (λ for the noise prototype) is dropped, so
    the product's duplicates collapse; a list of grids is the union of their products, in order."""
    spec = {"method": "grood", "sweep": [{"prototype": ["mixup", "noise"], "lam": [0.3, 0.9]},
                                         {"prototype": ["mixup"], "lam": [0.3], "k": [1, 10]}]}
    names = [p.name for p in tuning.points("g", spec)]
    assert names == ["g~prototype=mixup,lam=0.3", "g~prototype=mixup,lam=0.9", "g~prototype=noise",
                     "g~prototype=mixup,lam=0.3,k=10"]  # k=1 is the default: the first point again


def test_a_grid_value_equal_to_the_config_shares_its_prototypes():
    """λ = 0.5 at a grid point is the config's prototypes.lam: the point reads the default stores."""
    cfg = tuned_tiny(g={"method": "grood", "sweep": {"lam": [0.3, 0.5]}})
    pts = {p.name: p for p in grood.config.sweeps(cfg)["g"]}
    assert pts["g~lam=0.5"].params["lam"] is None and pts["g~lam=0.3"].params["lam"] == 0.3
    spaces = {n: d.gradient_space for n, d in grood.config.gradient_detectors(cfg).items()}
    assert spaces["g~lam=0.5"] == spaces["grood"] == "mixup_ood_T1"
    assert spaces["g~lam=0.3"] == "mixup~lam=0.3_ood_T1"
    assert list(grood.config.fitted_detectors(cfg)) == ["grood", "msp", "energy", "g~lam=0.3", "g~lam=0.5"]


def test_paper_sweeps_the_grid_the_class_carries():
    pts = tuning.points("knn", {"method": "knn", "sweep": "paper"})
    assert [p.params["k"] for p in pts] == make_detector("knn").sweep_grid["k"]
    assert make_detector("grood").sweep_grid and make_detector("odin").sweep_grid


@pytest.mark.parametrize("sweep, needles", [
    ({"neighbours": [1, 2]}, ["detectors.d.sweep.neighbours", "not a parameter of method 'knn'", "'k'"]),
    ({"k": []}, ["detectors.d.sweep.k", "non-empty list"]),
    ({"k": [1, 1]}, ["detectors.d.sweep.k", "repeats a value"]),
    ({"k": [0, 5]}, ["detectors.d.sweep", "knn k must be ≥ 1", "at the grid point d~k=0"]),
    ("grid", ["detectors.d.sweep", "must map parameters to lists", "'paper'"]),
])
def test_bad_sweeps_name_the_key(sweep, needles):
    out = "\n".join(tuning.sweep_problems("d", {"method": "knn", "sweep": sweep}))
    for needle in needles:
        assert needle in out, f"{needle!r} missing from:\n{out}"
    unsafe = tuning.sweep_problems("g", {"method": "grood", "sweep": {"layer": ["layer/1"]}})
    assert "file names" in unsafe[0]
    paperless = tuning.sweep_problems("m", {"method": "msp", "sweep": "paper"})
    assert "carries no grid" in paperless[0]


def test_choose_takes_the_best_and_the_first_of_ties():
    assert tuning.choose([0.7, 0.9, 0.8]) == 1
    assert tuning.choose([0.9, 0.7, 0.9]) == 0
    with pytest.raises(ValueError):
        tuning.choose([])


# ------------------------------------------------------------------------ validation data checks


def test_a_validation_set_that_is_a_test_set_is_refused_naming_both():
    cfg = tuned_tiny(knn={"method": "knn", "sweep": {"k": [1, 5]}})
    assert grood.config.validate(cfg) == []
    cfg["benchmarks"]["tiny"]["ood_val"] = ["fashion_tiny"]
    out = "\n".join(grood.config.validate(cfg))
    assert "benchmarks.tiny.ood_val" in out and "'fashion_tiny'" in out and "OOD test set of benchmarks.tiny" in out
    # the same noise generator as a test set: the auxiliary outliers' overlap check, naming both
    cfg["datasets"]["gauss_val"] = {"source": "noise", "kind": "gaussian", "n": 50, "seed": 7}
    cfg["benchmarks"]["tiny"]["ood_val"] = ["gauss_val"]
    out = "\n".join(grood.config.validate(cfg))
    assert "OOD-validation set 'gauss_val'" in out and "'gaussian_tiny'" in out and "same generator" in out


def test_a_swept_detector_needs_validation_data():
    cfg = copy.deepcopy(TINY)
    cfg["detectors"]["knn"] = {"method": "knn", "sweep": {"k": [1, 5]}}
    out = "\n".join(grood.config.validate(cfg))
    assert "benchmarks.tiny" in out and "id_val and ood_val" in out and "fraction: 0.1" in out
    bad = tuned_tiny(knn={"method": "knn", "sweep": {"k": [1, 5]}})
    bad["benchmarks"]["tiny"]["id_val"] = {"fraction": 0.2, "n": 50}
    assert "exactly one of 'fraction'" in "\n".join(grood.config.validate(bad))


def test_the_tune_stage_refuses_a_test_set_and_marks_its_choice(tmp_path):
    from grood.stages.tune import chosen_point, tune_stage

    rng = np.random.default_rng(0)
    paths = {}
    for point, gap in (("d~k=1", 1.0), ("d~k=5", 2.0), ("d~k=9", 2.0)):
        for part, mean in (("id_val", gap), ("noise_val", 0.0)):
            paths[(point, part)] = tmp_path / f"{point}-{part}.npy"
            np.save(paths[(point, part)], rng.normal(mean, 1.0, 300))
    scores = [{"point": p, "part": part, "path": str(path)} for (p, part), path in paths.items()]
    with pytest.raises(ValueError, match=r"\['fashion'\] are also OOD test sets.*fashion"):
        tune_stage("d", 0, scores, ["d~k=1"], ["fashion"], ["fashion", "noise"], tmp_path / "x.csv")
    out = tmp_path / "tuning.csv"
    best = tune_stage("d", 0, scores, ["d~k=1", "d~k=5", "d~k=9"], ["noise_val"], ["fashion"], out)
    table = pd.read_csv(out)
    assert best == chosen_point(out) == table.loc[table["val_auroc"].idxmax(), "point"]
    assert table["chosen"].sum() == 1 and list(table["point"]) == ["d~k=1", "d~k=5", "d~k=9"]
    assert set(table.columns) >= {"seed", "detector", "order", "point", "val_auroc", "val_auroc_noise_val", "chosen"}


# ------------------------------------------------------------------------------ the ID hold-out


def test_the_id_hold_out_makes_two_disjoint_datasets():
    from grood.data.holdout import build_holdout

    cfg = tuned_tiny(knn={"method": "knn", "sweep": {"k": [1, 5]}})
    grood.config.expand_holdouts(cfg)
    bench = cfg["benchmarks"]["tiny"]
    assert bench["id"] == "mnist_tiny~fit" and bench["id_val_dataset"] == "mnist_tiny~idval"
    assert cfg["datasets"]["mnist_tiny~idval"] == {"source": "holdout", "base": "mnist", "keep": "val",
                                                   "base_params": {"max_train": 600, "max_test": 200},
                                                   "fraction": 0.2, "seed": 0}
    y = np.repeat(np.arange(10), 30)
    base = {"x_train": np.arange(300)[:, None], "y_train": y, "x_test": np.zeros((5, 1)), "y_test": np.zeros(5),
            "meta": {"licence": "x", "class_names": []}}
    p = {"base": "mnist", "base_params": {}, "fraction": 0.2, "n": None, "seed": 0}
    fit, val = (build_holdout({**p, "keep": k}, None, base) for k in ("fit", "val"))
    held = val["x_test"].ravel()
    assert len(held) == 60 and np.bincount(val["y_test"]).tolist() == [6] * 10  # class-stratified
    assert sorted([*fit["x_train"].ravel(), *held]) == list(range(300))  # disjoint, together the split
    assert fit["x_test"] is base["x_test"] and "x_train" not in val


# ------------------------------------------------------------------- GROOD's prototype settings


def test_prototype_variants_name_their_own_stores():
    assert vocab.prototype_name("mixup") == "mixup"
    assert vocab.prototype_name("mixup", {"lam": 0.3, "layer": "layer2"}) == "mixup~layer=layer2,lam=0.3"
    g = make_detector("grood", {"lam": 0.3, "train_share": 0.5})
    assert g.gradient_space == "mixup~lam=0.3,train_share=0.5_ood_T1"
    assert make_detector("grood", {"train_share": 1.0}).gradient_space == "mixup_ood_T1"
    assert check_detector("grood", {"prototype": "noise", "lam": 0.3}, "detectors.g") == [
        "detectors.g.lam: prototype 'noise' does not read lam; remove it"]
    from grood.run.finished import gradient_space, prototype_name

    assert gradient_space(g.get_params()) == g.gradient_space
    assert prototype_name(g.get_params()) == "mixup~lam=0.3,train_share=0.5"
    assert gradient_space({"prototype": "mixup", "wrt": "ood", "temperature": 1.0}) == "mixup_ood_T1"  # old runs


def test_a_training_share_indexes_only_its_rows():
    from grood.data.subset import training_share_mask

    labels = np.repeat(np.arange(4), 25)
    keep = training_share_mask(labels, 0.2)
    assert keep.sum() == 20 and np.bincount(labels[keep]).tolist() == [5] * 4
    assert np.array_equal(keep, training_share_mask(labels, 0.2))  # the same rows in every stage
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(100, 3)).astype(np.float32)
    logits = np.eye(4)[labels] * 5.0  # every row correctly classified
    full = make_detector("grood", {}).fit(grads, logits, labels)
    share = make_detector("grood", {"train_share": 0.2}).fit(grads, logits, labels)
    assert full.n_indexed_ == 100 and share.n_indexed_ == 20
