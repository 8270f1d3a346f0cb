"""GROOD's prototypes and targeted mix-up against a hand-built network whose answer is known in
closed form: a linear two-stage net, so every activation, the runner-up class, the early prototypes
and the mixed features can be written down with numpy alone (docs/methods.md §1, steps 1–2)."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from grood.net.models import StagedNet
from grood.net.preprocess import InputSpec
from grood.method.prototypes import class_means, early_prototypes, mixup_features, nearest_prototype, runner_up

# 2×2 grey images; std 1/255 and mean 0 make the normalised input equal to the raw pixel values
SPEC = InputSpec(1, 2, (0.0,), (1.0 / 255.0,))
RNG = np.random.default_rng(0)
W1, B1 = RNG.normal(size=(3, 4)), RNG.normal(size=3)  # layer1: e = W1 x + b1       (the early stage)
W2, B2 = RNG.normal(size=(5, 3)), RNG.normal(size=5)  # layer2: h = W2 e + b2       (penultimate)
W3, B3 = RNG.normal(size=(4, 5)), RNG.normal(size=4)  # head:   z = W3 h + b3       (4 classes)


def _linear(w, b):
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w))
        layer.bias.copy_(torch.as_tensor(b))
    return layer


def hand_built_net() -> StagedNet:
    stages = OrderedDict(layer1=nn.Sequential(nn.Flatten(), _linear(W1, B1)), layer2=_linear(W2, B2))
    return StagedNet(stages, _linear(W3, B3)).eval()


def images_and_labels(n=40):
    x = RNG.integers(0, 4, size=(n, 2, 2), dtype=np.uint8)  # small pixel values keep float32 exact enough
    y = np.arange(n) % 4
    return x, y


def by_hand(x):
    """(e, h, z) of the linear net, in float64."""
    e = x.reshape(len(x), -1).astype(np.float64) @ W1.T + B1
    h = e @ W2.T + B2
    return e, h, h @ W3.T + B3


def test_early_prototypes_are_class_means_of_the_early_activation():
    x, y = images_and_labels()
    e, _, _ = by_hand(x)
    q = early_prototypes(hand_built_net(), x, y, 4, "layer1", SPEC, torch.device("cpu"), batch_size=7)
    expected = np.stack([e[y == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_mixup_mixes_with_the_runner_up_class_prototype(lam):
    """``h̃ = W2 (λ e + (1−λ) Q_{c2}) + b2`` with ``c2`` the second-largest logit: a wrong λ side, the
    top class, the true label or a wrong early layer would all give other numbers."""
    x, y = images_and_labels()
    e, _, z = by_hand(x)
    order = np.argsort(-z, axis=1)
    top, c2 = order[:, 0], order[:, 1]
    # the construction must tell the runner-up from the top class and from the true label
    assert (c2 != top).all() and (c2 != y).mean() > 0.5
    q = RNG.normal(size=(4, 3)) * 5  # early prototypes far apart, so a wrong row shows
    expected = (lam * e + (1 - lam) * q[c2]) @ W2.T + B2
    got = mixup_features(hand_built_net(), x, q.astype(np.float32), "layer1", lam, SPEC, torch.device("cpu"),
                         batch_size=9)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if 0 < lam < 1:  # the same mix with the top class or the true label is really different
        for wrong in (top, y):
            assert np.abs(got - ((lam * e + (1 - lam) * q[wrong]) @ W2.T + B2)).max() > 1e-2


def test_runner_up_is_the_second_largest_logit():
    z = np.array([[0.1, 3.0, 2.0, -1.0], [5.0, 4.0, 4.5, 0.0], [1.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(runner_up(z), [2, 2, 1])  # ties: the later index ranks second


def test_class_prototypes_and_nearest_prototype():
    x, y = images_and_labels()
    _, h, _ = by_hand(x)
    p = class_means(h, y, 4)
    np.testing.assert_allclose(p, np.stack([h[y == c].mean(0) for c in range(4)]))
    d = ((h[:, None, :] - p[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(nearest_prototype(h, p), d.argmin(1))
    with pytest.raises(ValueError, match=r"class\(es\) \[3\]"):
        class_means(h[y < 3], y[y < 3], 4)


def test_prototypes_stage_builds_p_ood_from_the_mixed_features(tmp_path, monkeypatch):
    """The stage's ``P`` (class means of the stored features), ``Q`` (true labels, accumulated by the
    features pass over the training part) and ``p_ood`` (mean of ``h̃`` over the seeded ``n_mix`` pick,
    λ from the params), rebuilt from the hand-built net by numpy."""
    import grood.net.training
    from grood.method.early_store import read_early
    from grood.stages.features import features_stage
    from grood.stages.prototypes import prototypes_stage
    from grood.storage import load_npz, save_npz

    x, y = images_and_labels(60)
    e, h, z = by_hand(x)
    monkeypatch.setattr(grood.net.training, "load_checkpoint",
                        lambda path, device=None: (hand_built_net(), {"spec": SPEC.to_dict(), "num_classes": 4,
                                                                      "classes": [0, 1, 2, 3]}))
    model_pt = tmp_path / "model.pt"
    model_pt.write_bytes(b"stand-in: load_checkpoint is replaced above")
    save_npz(tmp_path / "data.npz", {"x_train": x, "y_train": y, "x_test": x, "y_test": y})
    features_stage(model_pt, tmp_path / "data.npz", "train", True, tmp_path / "train.zarr", batch_size=16,
                   device="cpu", early_layer="layer1", early_out=tmp_path / "early.zarr")
    prototypes_stage(model_pt, tmp_path / "data.npz", tmp_path / "train.zarr", "mixup",
                     {"layer": "layer1", "lam": 0.3, "n_mix": 25}, tmp_path / "mixup.npz", seed=3,
                     early_zarr=tmp_path / "early.zarr")
    got, info = load_npz(tmp_path / "mixup.npz")
    assert set(got) == {"P", "p_ood"}  # Q lives in its own store, which the gradients jobs never read

    q = np.stack([e[y == c].mean(0) for c in range(4)])
    c2 = np.argsort(-z, axis=1)[:, 1]
    pick = np.sort(np.random.default_rng(3).choice(len(x), 25, replace=False))
    p_ood = ((0.3 * e[pick] + 0.7 * q[c2[pick]]) @ W2.T + B2).mean(0)
    np.testing.assert_allclose(got["P"], np.stack([h[y == c].mean(0) for c in range(4)]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(read_early(tmp_path / "early.zarr", "layer1")[0], q, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["p_ood"], p_ood, rtol=1e-4, atol=1e-4)
    assert info["lam"] == 0.3 and info["n_mix"] == 25 and info["layer"] == "layer1"
    assert info["early_prototypes"] == str(tmp_path / "early.zarr")  # read, not recomputed
    # a tuning point at another stage than the store's: Q of its own pass over the training images
    prototypes_stage(model_pt, tmp_path / "data.npz", tmp_path / "train.zarr", "mixup",
                     {"layer": "layer2", "lam": 0.3, "n_mix": 25}, tmp_path / "m2.npz",
                     early_zarr=tmp_path / "early.zarr")
    _, info2 = load_npz(tmp_path / "m2.npz")
    assert info2["layer"] == "layer2" and info2["early_prototypes"] is None
    assert info2["early_prototypes_pass"] == "this job's, over 60 training images"
