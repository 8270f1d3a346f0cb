"""GROOD's closed-form NCP gradient against per-sample autograd (docs/methods.md §1.3)."""

import numpy as np
import pytest

from grood.method.gradients import WRT, grood_gradients, grood_gradients_autograd, ncp_softmax


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    c, d = 6, 24
    P = rng.normal(size=(c, d))
    p_ood = rng.normal(size=d) * 0.3
    h = np.vstack([P[rng.integers(0, c, 40)] + rng.normal(scale=0.5, size=(40, d)), rng.normal(size=(20, d))])
    z = rng.normal(size=(60, c))
    return h.astype(np.float32), z.astype(np.float32), P.astype(np.float32), p_ood.astype(np.float32)


@pytest.mark.parametrize("wrt", WRT)
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_closed_form_equals_autograd(problem, wrt, temperature):
    h, z, P, p_ood = problem
    closed = grood_gradients(h, z, P, p_ood, wrt, temperature, batch_size=7)
    ref = grood_gradients_autograd(h, z, P, p_ood, wrt, temperature)
    np.testing.assert_allclose(closed, ref, atol=1e-5, rtol=0)
    assert np.abs(ref).max() > 1e-3  # the comparison is not between zeros


def test_ood_gradient_is_pi_ood_times_unit_vector(problem):
    """‖∂ℓ/∂p_ood‖ = π_ood for T=1, and it is independent of the pseudo-label."""
    h, z, P, p_ood = problem
    g = grood_gradients(h, z, P, p_ood, "ood")
    _, pi = ncp_softmax(h, P, p_ood)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), pi[:, -1], rtol=1e-5)
    shuffled = np.roll(z, 1, axis=1)
    np.testing.assert_allclose(grood_gradients(h, shuffled, P, p_ood, "ood"), g, atol=1e-7)


def test_all_contains_ood_block(problem):
    h, z, P, p_ood = problem
    g_all = grood_gradients(h, z, P, p_ood, "all")
    assert g_all.shape == (len(h), (len(P) + 1) * P.shape[1])
    np.testing.assert_allclose(g_all[:, -P.shape[1]:], grood_gradients(h, z, P, p_ood, "ood"), atol=1e-7)


def test_bad_arguments_are_named(problem):
    h, z, P, p_ood = problem
    with pytest.raises(ValueError, match="wrt"):
        grood_gradients(h, z, P, p_ood, "weights")
    with pytest.raises(ValueError, match="temperature"):
        grood_gradients(h, z, P, p_ood, "ood", temperature=0)
    with pytest.raises(ValueError, match="p_ood"):
        grood_gradients(h, z, P, p_ood[:-1])
