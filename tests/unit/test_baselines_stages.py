"""The post-hoc baselines through the pipeline's stages (docs/baselines.md): the detectors fitted on
the classifier head get it from the checkpoint in `fit_detector`; GAIA's statistics come from the
`features` stage's own forward pass, which leaves the features and logits as they are; a config can
take several detector suites."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grood.config
from conftest import REPO

C = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A LeNet checkpoint (untrained, seeded), a small ID dataset and its train/test feature stores."""
    from grood.net.models import build_model
    from grood.net.preprocess import spec_from_training
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint
    from grood.stages.features import features_stage
    from grood.storage import save_npz

    tmp = tmp_path_factory.mktemp("baselines_run")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    y = rng.integers(0, C, 40)
    spec = spec_from_training(x)
    torch.manual_seed(0)
    model = build_model("lenet5", 1, C).eval()
    save_checkpoint(tmp / "model.pt", TrainResult(model, spec, list(range(C))), TrainConfig(arch="lenet5"))
    save_npz(tmp / "data.npz", {"x_train": x, "y_train": y, "x_test": x[:24], "y_test": y[:24]})
    for split in ("train", "test"):
        features_stage(tmp / "model.pt", tmp / "data.npz", split, True, tmp / f"{split}.zarr", batch_size=16,
                       device="cpu", threads=1)
    return tmp


def test_features_with_gaia_keep_the_plain_pass_and_add_its_statistics(run, tmp_path):
    """gaia=True: the same features, logits and labels bit for bit (same batches, one forward pass),
    plus gaia_a / gaia_z equal to grood.net.gaia's on the same batches, and the hooked layers in the
    attrs; chunks stay one batch deep."""
    import zarr

    from grood.net.gaia import gaia_batches
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint
    from grood.stages.features import features_stage
    from grood.storage import load_npz

    out = tmp_path / "test_gaia.zarr"
    features_stage(run / "model.pt", run / "data.npz", "test", True, out, batch_size=16, device="cpu", threads=1,
                   gaia=True)
    got, plain = zarr.open_group(str(out), mode="r"), zarr.open_group(str(run / "test.zarr"), mode="r")
    assert sorted(got.array_keys()) == ["features", "gaia_a", "gaia_z", "labels", "logits"]
    assert sorted(plain.array_keys()) == ["features", "labels", "logits"]
    for k in plain.array_keys():
        assert got[k][:].tobytes() == plain[k][:].tobytes(), k
    model, meta = load_checkpoint(run / "model.pt")
    model = model.to(memory_format=torch.channels_last)  # as the stage runs it (one thread: set by the stage)
    images = load_npz(run / "data.npz", ["x_test"])[0]["x_test"]
    ref = gaia_batches(model, images, InputSpec.from_dict(meta["spec"]), "cpu", batch_size=16)
    for k in ("gaia_a", "gaia_z"):
        np.testing.assert_array_equal(got[k][:], ref[k])
        assert got[k].chunks[0] == 16
    assert got.attrs["gaia_layers"] == {"z": ["layer1.conv", "layer2.conv", "layer3.conv"],
                                        "a": ["layer2.conv", "layer3.conv"]}
    assert "gaia_layers" not in plain.attrs


@pytest.mark.parametrize("method", ["react", "ash", "scale", "dice", "vim"])
def test_head_detectors_fit_on_the_checkpoints_head(run, tmp_path, method):
    """fit_detector opens only the stored arrays and takes head_weight / head_bias from the head
    stage's arrays of model.pt, or from model.pt itself: the stored detector scores as one fitted in
    memory on the model's own fc, and both routes store the same state."""
    from grood.detectors import make_detector
    from grood.detectors.head import head_arrays
    from grood.detectors.store import load_detector
    from grood.net.training import load_checkpoint
    from grood.stages.fit_detector import fit_detector_stage
    from grood.stages.head import head_stage
    from grood.stages.score import score_stage
    from grood.storage import read_zarr

    head_stage(run / "model.pt", tmp_path / "head.npz")
    fit_detector_stage(method, {}, [run / "train.zarr"], tmp_path / "det.npz", head_npz=tmp_path / "head.npz")
    fit_detector_stage(method, {}, [run / "train.zarr"], tmp_path / "ck.npz", model_pt=run / "model.pt")
    score_stage(tmp_path / "det.npz", [run / "test.zarr"], tmp_path / "s.npy")
    train, test = read_zarr(run / "train.zarr")[0], read_zarr(run / "test.zarr")[0]
    det = make_detector(method).fit(**train, **head_arrays(load_checkpoint(run / "model.pt")[0]))
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), det.score(**test))
    a, b = load_detector(tmp_path / "det.npz").get_state(), load_detector(tmp_path / "ck.npz").get_state()
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_head_detector_without_the_head_names_it(run, tmp_path):
    from grood.stages.fit_detector import fit_detector_stage
    from grood.storage.files import save_npz

    with pytest.raises(ValueError, match=r"react fits on the classifier head.*pass head_npz.*or model_pt"):
        fit_detector_stage("react", {}, [run / "train.zarr"], tmp_path / "det.npz")
    save_npz(tmp_path / "other.npz", {"weights": np.zeros(3)})
    with pytest.raises(ValueError, match=r"react: .*other.npz lacks head_weight, head_bias"):
        fit_detector_stage("react", {}, [run / "train.zarr"], tmp_path / "det.npz", head_npz=tmp_path / "other.npz")
    assert not (tmp_path / "det.npz").exists()


def test_gaia_scores_the_features_stores_statistics(run, tmp_path):
    """GAIA fits nothing (no stores, no model) and scores the cached array of its variant."""
    from grood.stages.features import features_stage
    from grood.stages.fit_detector import fit_detector_stage
    from grood.stages.score import score_stage
    from grood.storage import read_zarr

    store = tmp_path / "test.zarr"
    features_stage(run / "model.pt", run / "data.npz", "test", True, store, batch_size=16, device="cpu", threads=1,
                   gaia=True)
    arrays = read_zarr(store)[0]
    for variant in ("a", "z"):
        fit_detector_stage("gaia", {"variant": variant}, [], tmp_path / f"{variant}.npz")
        score_stage(tmp_path / f"{variant}.npz", [store], tmp_path / f"{variant}.npy")
        x = arrays[f"gaia_{variant}"].astype(np.float64)
        np.testing.assert_array_equal(np.load(tmp_path / f"{variant}.npy"), -(x**2).mean(1))


def _suites():
    return grood.config.load_suites(REPO / "config" / "suites.yaml")


def test_several_suites_in_order_then_the_configs_own():
    suites = _suites()
    cfg = {"detectors": {"suite": ["standard", "baselines"], "react": {"method": "react", "percentile": 95},
                         "mine": {"method": "msp"}}}
    got = grood.config.expand_suites(cfg, suites)["detectors"]
    assert list(got) == [*suites["standard"], *suites["baselines"], "mine"]
    assert got["react"] == {"method": "react", "percentile": 95}
    assert grood.config.expand_suites({"detectors": {"suite": ["baselines"]}}, suites)["detectors"] == suites["baselines"]


def test_suites_naming_one_detector_twice_or_unknown_are_refused():
    suites = {**_suites(), "mine": {"msp": {"method": "msp"}}}
    with pytest.raises(grood.config.ConfigError, match=r"suites \['standard', 'mine'\] both name \['msp'\]"):
        grood.config.expand_suites({"detectors": {"suite": ["standard", "mine"]}}, suites)
    with pytest.raises(grood.config.ConfigError, match=r"unknown suite 'baseline'"):
        grood.config.expand_suites({"detectors": {"suite": ["standard", "baseline"]}}, suites)


def test_the_baselines_suite_names_every_new_method_with_valid_params():
    """Every method added beside the standard twelve is in the baselines suite, or GAIA in a suite of
    its own (its statistics cost the features jobs backward passes), and each entry builds."""
    from grood.detectors import METHODS, make_detector

    suites = _suites()
    methods = {spec["method"] for spec in suites["baselines"].values()}
    assert methods == {"react", "ash", "scale", "dice", "vim", "gen", "klm", "rmds", "she", "gradorth"}
    assert {spec["method"] for spec in suites["gaia"].values()} == {"gaia"} and set(suites["gaia"]) == {"gaia_a", "gaia_z"}
    assert methods <= set(METHODS) and not methods & {s["method"] for s in suites["standard"].values()}
    for name, spec in {**suites["baselines"], **suites["gaia"]}.items():
        make_detector(spec["method"], grood.config.detector_params(spec))
