"""Staged backbones: running to a stage and from it on is the plain forward pass, exactly."""

import numpy as np
import pytest
import torch

from grood.models import build_model
from grood.preprocess import InputSpec
from grood.prototypes import mixup_features


@pytest.mark.parametrize("arch,shape", [("lenet", (5, 1, 28, 28)), ("resnet18", (2, 3, 32, 32))])
def test_split_forward_is_exact(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape[1], 7).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        full = model(x)
        for stage in model.stage_names:
            e = model.forward_to(x, stage)
            torch.testing.assert_close(model.fc(model.forward_from(e, stage)), full, rtol=0, atol=0)


def test_mixup_with_lambda_one_reproduces_plain_forward():
    """λ=1 keeps the image's own activation: h̃ must equal the unmixed penultimate features."""
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10).eval()
    spec = InputSpec(1, 28, (0.13,), (0.31,))
    images = np.random.default_rng(0).integers(0, 256, (9, 28, 28), dtype=np.uint8)
    from grood.preprocess import to_tensor

    shape = model.forward_to(torch.zeros(1, 1, 28, 28), "layer1").shape[1:]
    early = np.random.default_rng(1).normal(size=(10, *shape)).astype(np.float32)

    with torch.no_grad():
        plain = model.features(to_tensor(images, spec)).numpy()
    mixed = mixup_features(model, images, early, "layer1", 1.0, spec, torch.device("cpu"), batch_size=4)
    np.testing.assert_allclose(mixed, plain, rtol=0, atol=1e-6)
    half = mixup_features(model, images, early, "layer1", 0.5, spec, torch.device("cpu"))
    assert np.abs(half - plain).max() > 1e-3  # λ<1 really mixes


def test_unknown_stage_and_arch_are_named():
    model = build_model("lenet", 1, 10)
    with pytest.raises(ValueError, match="layer9"):
        model.forward_to(torch.zeros(1, 1, 28, 28), "layer9")
    with pytest.raises(ValueError, match="vgg"):
        build_model("vgg", 1, 10)
