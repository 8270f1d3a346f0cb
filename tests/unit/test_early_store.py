"""The mix-up's early prototypes Q in one pass: accumulated by the features pass over the training
part, equal bit for bit to the former second pass (:func:`grood.method.prototypes.early_prototypes`),
sharded with partial sums, and read row by row by the figure (grood.method.early_store)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from conftest import same_store


@pytest.fixture(scope="module")
def lenet_train(tmp_path_factory):
    """A random LeNet checkpoint (OpenOOD's MNIST network: the default benchmark's) and 70 labelled
    28×28 training images of 10 classes."""
    import torch

    from grood.net.models import lenet5
    from grood.net.preprocess import InputSpec
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint
    from grood.storage import save_npz

    d = tmp_path_factory.mktemp("early")
    torch.manual_seed(0)
    model = lenet5(1, 10).eval()
    spec = InputSpec(1, 28, (0.1307,), (0.3081,))
    save_checkpoint(d / "model.pt", TrainResult(model, spec, list(range(10)), []),
                    TrainConfig.from_dict({"arch": "lenet5", "epochs": 1}))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (70, 28, 28), dtype=np.uint8)
    y = np.arange(70) % 10
    save_npz(d / "data.npz", {"x_train": x, "y_train": y, "x_test": x[:20], "y_test": y[:20]})
    return d


def _features(d, out, early=None, **kw):
    from grood.pipeline import features_stage

    features_stage(d / "model.pt", d / "data.npz", "train", True, out, batch_size=32, device="cpu", threads=2,
                   early_layer="layer1" if early else None, early_out=early, **kw)


def test_one_pass_q_equals_the_two_pass_computation_bit_for_bit(lenet_train, tmp_path):
    """The features pass (channels-last network, its own batch size) accumulates Q exactly as the
    former second pass did (contiguous network, batches of 512): same float64 row-order sums, same
    bits; and the features are those of a pass without Q."""
    import torch

    from grood.method.early_store import read_early
    from grood.method.prototypes import early_prototypes
    from grood.net.preprocess import InputSpec
    from grood.net.training import load_checkpoint
    from grood.stages.io import load_split

    d = lenet_train
    _features(d, tmp_path / "with.zarr", early=tmp_path / "early.zarr")
    _features(d, tmp_path / "without.zarr")
    same_store(tmp_path / "with.zarr", tmp_path / "without.zarr")
    q, attrs = read_early(tmp_path / "early.zarr", "layer1")

    torch.set_num_threads(2)
    model, meta = load_checkpoint(d / "model.pt", torch.device("cpu"))
    x, y = load_split(d / "data.npz", "train")
    before = early_prototypes(model, x, y, 10, "layer1", InputSpec.from_dict(meta["spec"]), torch.device("cpu"))
    assert q.dtype == np.float32 and q.shape == (10, 6, 14, 14)
    assert q.tobytes() == before.tobytes()
    assert attrs["layer"] == "layer1" and attrs["num_classes"] == 10
    counts = zarr.open_group(str(tmp_path / "early.zarr"), mode="r")["counts"][:]
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=10))


def test_sharded_partial_sums_gather_into_the_same_store(lenet_train, tmp_path):
    """Two feature shards write float64 partial sums; the gather adds them: the features merge byte for
    byte, Q agrees to float64 rounding."""
    from grood.method.early_store import read_early
    from grood.stages.features_gather import features_gather_stage

    d = lenet_train
    _features(d, tmp_path / "whole.zarr", early=tmp_path / "whole_early.zarr")
    stores = [tmp_path / f"{i}.zarr" for i in range(2)]
    sums = [tmp_path / f"{i}.early.npz" for i in range(2)]
    for i in range(2):
        _features(d, stores[i], early=sums[i], shard=(i, 2))
    features_gather_stage(stores, tmp_path / "merged.zarr", 32, sums, tmp_path / "merged_early.zarr")
    same_store(tmp_path / "whole.zarr", tmp_path / "merged.zarr")
    whole, _ = read_early(tmp_path / "whole_early.zarr")
    merged, attrs = read_early(tmp_path / "merged_early.zarr", "layer1")
    np.testing.assert_allclose(merged, whole, rtol=1e-6, atol=0)
    assert attrs["sharded_from"]["count"] == 2 and "shard" not in attrs
    with pytest.raises(ValueError, match="expected shards"):
        features_gather_stage(stores[:1], tmp_path / "bad.zarr", 32, sums[:1], tmp_path / "bad_early.zarr")


def test_parts_without_q_and_rows_read_on_demand(lenet_train, tmp_path):
    """An OOD part (or no mix-up) gets a store without Q that says why; the figure's reader reads the
    classes it draws, in the order asked, repeated or not."""
    from grood.method.early_store import EarlyRows, open_early, read_early
    from grood.pipeline import features_stage

    d = lenet_train
    features_stage(d / "model.pt", d / "data.npz", "test", False, tmp_path / "ood.zarr", batch_size=32,
                   device="cpu", early_layer="layer1", early_out=tmp_path / "ood_early.zarr")
    with pytest.raises(ValueError, match="no early prototypes Q .*not an ID set"):
        open_early(tmp_path / "ood_early.zarr")
    _features(d, tmp_path / "train.zarr", early=tmp_path / "none.zarr")  # early_layer given, so Q is made
    rows = EarlyRows(tmp_path / "none.zarr", "layer1")
    q, _ = read_early(tmp_path / "none.zarr")
    assert len(rows) == 10
    np.testing.assert_array_equal(rows[np.array([7, 2, 7])], q[[7, 2, 7]])
    np.testing.assert_array_equal(rows[3], q[3])
    with pytest.raises(FileNotFoundError, match="features job"):
        open_early(tmp_path / "missing.zarr")


def test_a_training_label_outside_the_classes_is_refused():
    import torch

    from grood.method.early_store import EarlyMeans, means_from_sums
    from grood.net.models import lenet5

    acc = EarlyMeans(lenet5(1, 3), "layer1", 3, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"label\(s\) \[-1\]"):
        acc.add(torch.zeros((2, 1, 28, 28)), np.array([0, -1]))
    with pytest.raises(ValueError, match="unknown stage 'layer9'"):
        EarlyMeans(lenet5(1, 3), "layer9", 3, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"class\(es\) \[1\]"):
        means_from_sums(np.ones((2, 4)), np.array([3, 0]))


def test_means_on_the_device_equal_the_host_division():
    """Q class by class on the device (the float64 sums never leave it whole) is the host's division."""
    import torch

    from grood.method.early_store import EarlyMeans, means_from_sums
    from grood.net.models import lenet5

    torch.manual_seed(1)
    acc = EarlyMeans(lenet5(1, 3), "layer1", 3, torch.device("cpu"))
    for _ in range(3):
        acc.add(torch.randn(7, 1, 28, 28), np.array([0, 1, 2, 0, 1, 2, 2]))
    assert acc.means().tobytes() == means_from_sums(*acc.partial()).tobytes()
