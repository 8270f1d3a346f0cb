"""The model's input recipes: the ImageNet recipe equals torchvision's own transforms on the same PIL
images, and the MNIST/CIFAR path (no ``resize``) is byte for byte what it was before the recipe
existed (a frozen copy of that code is the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from samples import patterns
from grood.net.preprocess import InputSpec, as_nhwc, image_to_tensor, shorter_side_size, to_tensor


def _frozen_to_tensor(images: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """grood.net.preprocess.to_tensor as it was before ``InputSpec.resize`` (integ a0d2f6f), verbatim."""
    x = torch.from_numpy(as_nhwc(images, "images")).permute(0, 3, 1, 2).float().div_(255.0)
    c = x.shape[1]
    if c != spec.channels:
        if c == 1 and spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and spec.channels == 1:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
    if x.shape[-1] != spec.size:
        x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


GREY = patterns(7, 3, size=28, seed=1, channels=1)[0]
RGB = patterns(7, 3, size=32, seed=2)[0]


@pytest.mark.parametrize("images, spec", [
    (GREY, InputSpec(1, 28, (0.13,), (0.31,))),                     # MNIST as trained
    (GREY, InputSpec(3, 32, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))),  # grey → RGB, 28 → 32
    (RGB, InputSpec(3, 32, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))),   # CIFAR as trained
    (RGB, InputSpec(1, 28, (0.13,), (0.31,))),                       # RGB → grey, 32 → 28
], ids=["mnist", "grey-to-cifar", "cifar", "rgb-to-mnist"])
def test_default_path_is_byte_identical_to_before(images, spec):
    new, old = to_tensor(images, spec), _frozen_to_tensor(images, spec)
    assert new.dtype == old.dtype and new.shape == old.shape
    assert new.numpy().tobytes() == old.numpy().tobytes()
    per_image = torch.stack([image_to_tensor(img, spec) for img in images])
    assert per_image.numpy().tobytes() == old.numpy().tobytes()  # the file-list path: the same bytes


def test_spec_without_resize_is_stored_as_before():
    spec = InputSpec(1, 28, (0.13,), (0.31,))
    assert spec.to_dict() == {"channels": 1, "size": 28, "mean": (0.13,), "std": (0.31,)}
    assert InputSpec.from_dict(spec.to_dict()) == spec  # checkpoints written before the recipe load
    recipe = InputSpec(3, 224, (0.5,) * 3, (0.2,) * 3, resize=256)
    assert InputSpec.from_dict(recipe.to_dict()) == recipe


def _pil_images():
    """PIL images of mixed sizes and modes: landscape, portrait, square, already at the shorter
    side, grey (converted to RGB like torchvision's ImageFolder loader does)."""
    rng = np.random.default_rng(0)
    out = []
    for (h, w), mode in [((375, 500), "RGB"), ((500, 333), "RGB"), ((256, 256), "RGB"),
                         ((256, 301), "RGB"), ((241, 257), "L"), ((90, 61), "RGB")]:
        x = np.clip(patterns(1, 3, max(h, w), seed=int(rng.integers(1000)))[0][0, :h, :w].astype(int)
                    + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(x).convert(mode))
    return out


@pytest.mark.parametrize("weights_name", ["ResNet50_Weights.IMAGENET1K_V1", "ResNet50_Weights.IMAGENET1K_V2"])
def test_recipe_equals_torchvision_transforms(weights_name):
    """image_to_tensor with the weights' recipe gives exactly what ``weights.transforms()`` gives."""
    import torchvision

    from grood.net.pretrained import input_spec, weights_recipe

    weights = torchvision.models.get_weight(weights_name)
    spec = input_spec(weights_recipe(weights), {})
    reference = weights.transforms()
    for img in _pil_images():
        ours = image_to_tensor(np.asarray(img), spec, "test image")
        theirs = reference(img.convert("RGB"))
        assert ours.shape == theirs.shape == (3, 224, 224)
        assert torch.equal(ours, theirs), (img.size, img.mode, (ours - theirs).abs().max())


def test_recipe_with_config_overrides_equals_torchvision_compose():
    """A small recipe from config (resize 36, crop 32, own mean/std) against torchvision's
    Resize + CenterCrop + ToTensor + Normalize, on images whose shapes need every branch."""
    from torchvision import transforms as T

    spec = InputSpec(3, 32, (0.5, 0.4, 0.3), (0.2, 0.3, 0.25), resize=36)
    reference = T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    for img in _pil_images():
        torch.testing.assert_close(image_to_tensor(np.asarray(img), spec), reference(img.convert("RGB")),
                                   rtol=0, atol=0)
    batch = np.stack([np.asarray(i) for i in _pil_images() if i.size == (256, 256)])
    assert torch.equal(to_tensor(batch, spec)[0], reference(Image.fromarray(batch[0])))


def test_shorter_side_size_truncates_like_torchvision():
    assert shorter_side_size(500, 375, 256) == (341, 256)  # int(256 * 500 / 375) = 341
    assert shorter_side_size(333, 500, 256) == (256, 384)
    assert shorter_side_size(256, 256, 256) == (256, 256)


def test_recipe_errors_name_the_image_and_fix():
    spec = InputSpec(3, 224, (0.5,) * 3, (0.2,) * 3, resize=200)
    with pytest.raises(ValueError, match=r"my\.jpg.*smaller than the 224-pixel centre crop.*resize >= crop"):
        image_to_tensor(np.zeros((300, 400, 3), np.uint8), spec, "my.jpg")
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(np.zeros((30, 40, 3), np.float32), spec, "x")
