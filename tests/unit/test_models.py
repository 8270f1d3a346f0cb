"""Staged backbones: running to a stage and from it on is the plain forward pass, exactly."""

import numpy as np
import pytest
import torch

from grood.net.models import build_model
from grood.net.preprocess import InputSpec
from grood.method.prototypes import mixup_features


@pytest.mark.parametrize("arch,shape", [("lenet5", (5, 1, 28, 28)), ("lenet5", (2, 3, 32, 32)),
                                        ("cnn_bn_gap", (5, 1, 28, 28)),
                                        pytest.param("resnet18", (2, 3, 32, 32), marks=pytest.mark.slow)])
def test_split_forward_is_exact(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape[1], 7, size=shape[-1]).eval()
    x = torch.randn(shape)
    with torch.no_grad():
        full = model(x)
        for stage in model.stage_names:
            e = model.forward_to(x, stage)
            torch.testing.assert_close(model.fc(model.forward_from(e, stage)), full, rtol=0, atol=0)


def test_mixup_with_lambda_one_reproduces_plain_forward():
    """λ=1 keeps the image's own activation: h̃ must equal the unmixed penultimate features."""
    torch.manual_seed(0)
    model = build_model("lenet5", 1, 10).eval()
    spec = InputSpec(1, 28, (0.13,), (0.31,))
    images = np.random.default_rng(0).integers(0, 256, (9, 28, 28), dtype=np.uint8)
    from grood.net.preprocess import to_tensor

    shape = model.forward_to(torch.zeros(1, 1, 28, 28), "layer1").shape[1:]
    early = np.random.default_rng(1).normal(size=(10, *shape)).astype(np.float32)

    with torch.no_grad():
        plain = model.features(to_tensor(images, spec)).numpy()
    mixed = mixup_features(model, images, early, "layer1", 1.0, spec, torch.device("cpu"), batch_size=4)
    np.testing.assert_allclose(mixed, plain, rtol=0, atol=1e-6)
    half = mixup_features(model, images, early, "layer1", 0.5, spec, torch.device("cpu"))
    assert np.abs(half - plain).max() > 1e-3  # λ<1 really mixes


def test_lenet5_is_openood_lenet():
    """OpenOOD's MNIST LeNet: 5×5 convs 1→6 (pad 2) → 16 → 120, max-pool after the first two, a
    120 → 84 ReLU layer as penultimate feature, a linear head; no batch norm. 61,706 parameters."""
    model = build_model("lenet5", 1, 10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (1, 6, (5, 5), (2, 2)), (6, 16, (5, 5), (0, 0)), (16, 120, (5, 5), (0, 0))]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert model.stage_names == ["layer1", "layer2", "layer3", "head"]
    with torch.no_grad():
        x = torch.zeros(2, 1, 28, 28)
        assert model.forward_to(x, "layer1").shape == (2, 6, 14, 14)
        assert model.forward_to(x, "layer3").shape == (2, 120, 1, 1)
        assert model.features(x).shape == (2, 84)
    assert sum(p.numel() for p in model.parameters()) == 61706
    with pytest.raises(ValueError, match="fixed widths"):
        build_model("lenet5", 1, 10, width=8)


def test_unknown_stage_and_arch_are_named():
    with pytest.raises(ValueError, match="cnn_bn_gap"):
        build_model("lenet", 1, 10)  # the old name says where it went
    model = build_model("lenet5", 1, 10)
    with pytest.raises(ValueError, match="layer9"):
        model.forward_to(torch.zeros(1, 1, 28, 28), "layer9")
    with pytest.raises(ValueError, match="vgg"):
        build_model("vgg", 1, 10)
