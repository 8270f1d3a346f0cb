"""The training recipe's parts against independent references: augmentations against torchvision's
transforms, the cosine schedule against OpenOOD's formula, and the config's error messages."""

import math

import pytest
import torch
import torchvision.transforms.functional as TF

from grood.net.preprocess import InputSpec
from grood.net.training import AUGMENTATIONS, SCHEDULERS, TrainConfig, augment_batch, make_scheduler

SPEC = InputSpec(3, 8, (0.2, 0.4, 0.6), (0.5, 0.25, 0.2))


def _windows(x, black, flips):
    """Every torchvision ``RandomCrop(8, padding=4, fill=black)`` output of ``x`` (and its flips)."""
    padded = torch.stack([TF.pad(x[c : c + 1], [4], fill=float(black[c]))[0] for c in range(x.shape[0])])
    out = []
    for dy in range(9):
        for dx in range(9):
            w = TF.crop(padded, dy, dx, 8, 8)
            out.append(w)
            if flips:
                out.append(TF.hflip(w))
    return out


@pytest.mark.parametrize("kind", ["crop", "crop_flip"])
def test_crop_and_flip_equal_torchvision_windows(kind):
    """Each augmented image is one of the windows torchvision's crop (black padding, in normalised
    units) would cut, flipped or not; over a batch both flips and many offsets occur."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    black = [-m / s for m, s in zip(SPEC.mean, SPEC.std)]
    y = augment_batch(x, kind, g, SPEC)
    assert y.shape == x.shape
    flipped = 0
    for xi, yi in zip(x, y):
        windows = _windows(xi, black, flips=kind == "crop_flip")
        hits = [i for i, w in enumerate(windows) if torch.equal(w, yi)]
        assert hits, "an augmented image is not a torchvision crop window of its input"
        flipped += kind == "crop_flip" and all(i % 2 == 1 for i in hits)
    if kind == "crop_flip":
        assert 10 < flipped < 54  # about half flipped


def test_no_augmentation_and_shift_keep_content():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(augment_batch(x, "none", g, InputSpec(1, 8, (0.0,), (1.0,))), x)
    shifted = augment_batch(x, "shift", g, InputSpec(1, 8, (0.0,), (1.0,)))
    assert shifted.shape == x.shape and not torch.equal(shifted, x)


def test_cosine_schedule_is_openood_cosine_annealing():
    """OpenOOD: ``lr_min + (lr_max − lr_min)·½(1 + cos(π t/T))`` with lr_min = 1e-6, stepped per batch."""
    lr, total = 0.1, 50
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make_scheduler(opt, "cosine", lr, total)
    for t in range(total + 1):
        expected = 1e-6 + (lr - 1e-6) * 0.5 * (1 + math.cos(math.pi * t / total))
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        opt.step()
        sched.step()


def test_bad_training_options_are_named():
    with pytest.raises(ValueError, match="scheduler"):
        TrainConfig.from_dict({"scheduler": "step"})
    with pytest.raises(ValueError, match="augment"):
        TrainConfig.from_dict({"augment": True})
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 3})
    assert "cosine" in SCHEDULERS and "crop_flip" in AUGMENTATIONS
