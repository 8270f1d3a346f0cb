"""Determinism on CPU: training gives the same weights twice in one process, and features do not
depend on the batch size (two whole runs compared: tests/workflow/test_runs_are_identical.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch



def _tiny_training_set(n: int = 256):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), n // 4)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for c in range(4):  # a bright square per class: learnable in one epoch
        x[y == c, 4 + 5 * c : 9 + 5 * c, 4:12] = 250
    return x, y


@pytest.mark.slow  # trains twice
@pytest.mark.parametrize("arch,precision", [("lenet5", "fp32"), ("cnn_bn_gap", "bf16")])
def test_training_is_reproducible_in_process(arch, precision):
    """Same seed and thread count → identical weights (fp32, and bf16 autocast on CPU); another
    seed → different weights (the seed is really used)."""
    from grood.net.device import set_threads
    from grood.net.training import TrainConfig, train

    set_threads(2)
    x, y = _tiny_training_set()

    def weights(seed):
        cfg = TrainConfig.from_dict({"arch": arch, "width": 4 if arch == "cnn_bn_gap" else None, "epochs": 1,
                                     "batch_size": 32, "lr": 0.05, "precision": precision, "seed": seed,
                                     "augment": "crop_flip"})
        return train(x, y, cfg, torch.device("cpu")).model.state_dict()

    a, b, c = weights(0), weights(0), weights(1)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_features_do_not_depend_on_the_batch_size():
    """The same images give the same features whether they are pushed through in batches of 8 or 128
    (so a rerun with another ``features.batch_size`` reproduces the stores)."""
    from grood.net.device import set_threads
    from grood.net.forward import forward_batches
    from grood.net.training import TrainConfig, train

    set_threads(2)
    x, y = _tiny_training_set(128)
    cfg = TrainConfig.from_dict({"arch": "lenet5", "epochs": 1, "batch_size": 32, "lr": 0.05,
                                 "precision": "fp32", "seed": 0})
    result = train(x, y, cfg, torch.device("cpu"))
    small = forward_batches(result.model, x, result.spec, torch.device("cpu"), batch_size=8)
    large = forward_batches(result.model, x, result.spec, torch.device("cpu"), batch_size=128)
    for k in ("features", "logits"):
        np.testing.assert_allclose(small[k], large[k], rtol=1e-5, atol=1e-5, err_msg=k)
