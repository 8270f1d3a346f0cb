"""GReg / GReg+ (docs/methods.md §3) against independent references: the input-gradient regulariser
against per-sample autograd and central finite differences, the margin masks and the loss
normalisation on constructed energies, our K-Means against scikit-learn, the sampler on clusters
built to be found, the auxiliary outlier sources and their overlap check, and training runs
(deterministic GReg / GReg+, CE unchanged)."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import greg_config
from grood.data import DataError, aux_overlap, build_dataset
from grood.data.card import roles
from grood.data.outliers import AUX_GLYPHS
from grood.data.scramble import patch_shuffle, scramble
from grood.net.greg import (GRegWeights, authors_gradient_term, energy, energy_based_selection, energy_hinge,
                        greg_terms, input_gradient_norms, kmeans, margin_masks, select_from_clusters)
from grood.net.models import StagedNet, build_model
from grood.net.training import TrainConfig, augment_batch, encode_labels, make_scheduler, train

REPO = Path(__file__).resolve().parents[2]  # the repository
RAW = Path(os.environ.get("GROOD_RAW_DIR") or REPO / "resources" / "raw")
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------- the losses
def _tiny_mlp(dtype=torch.float64) -> StagedNet:
    """A smooth (tanh) network on 1x4x4 inputs: finite differences need no ReLU kinks."""
    torch.manual_seed(0)
    stages = OrderedDict(flat=nn.Flatten(), hidden=nn.Sequential(nn.Linear(16, 12), nn.Tanh()))
    return StagedNet(stages, nn.Linear(12, 5)).to(dtype)


def test_input_gradient_norms_equal_per_sample_autograd_on_lenet():
    """Batched double backprop vs one autograd.grad per sample: norms and the parameter gradient of
    the masked sum of norms (the create_graph path the optimiser sees)."""
    torch.manual_seed(1)
    model = build_model("lenet5", 1, 10).double()
    x = torch.randn(7, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([True, False, True, True, False, True, True])
    norms = input_gradient_norms(energy(model(x)), x, mask)
    ref = []
    for i in range(len(x)):
        xi = x[i : i + 1].detach().clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(-torch.logsumexp(model(xi), 1).sum(), xi, create_graph=True)
        ref.append(gi.flatten().norm() * mask[i])
    ref = torch.stack(ref)
    torch.testing.assert_close(norms, ref, rtol=1e-10, atol=1e-12)
    assert (norms[~mask] == 0).all()
    params = [p for p in model.parameters()]
    got = torch.autograd.grad(norms.sum(), params, retain_graph=True)
    want = torch.autograd.grad(ref.sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_input_gradient_norms_equal_central_finite_differences():
    model = _tiny_mlp()
    torch.manual_seed(2)
    x = torch.randn(5, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    norms = input_gradient_norms(energy(model(x)), x, torch.ones(5, dtype=torch.bool))
    h = 1e-6
    for i in range(len(x)):
        base = x[i].detach().flatten()
        grad = torch.empty_like(base)
        with torch.no_grad():
            for j in range(len(base)):
                step = torch.zeros_like(base)
                step[j] = h
                up = energy(model((base + step).view(1, 1, 4, 4)))
                down = energy(model((base - step).view(1, 1, 4, 4)))
                grad[j] = (up - down) / (2 * h)
        assert float(norms[i].detach()) == pytest.approx(float(grad.norm()), rel=1e-7)


def _rows_with_energy(energies: list[float]) -> torch.Tensor:
    """Logits whose −logsumexp is exactly each energy: [−E, −1e4, −1e4] (exp(−1e4 + E) is 0)."""
    z = torch.full((len(energies), 3), -1e4)
    z[:, 0] = -torch.tensor(energies)
    return z


def test_energy_is_minus_logsumexp():
    z = torch.randn(20, 7)
    torch.testing.assert_close(energy(z), -torch.log(torch.exp(z).sum(1)))
    assert energy(_rows_with_energy([-25.0, -7.0, 3.5])).tolist() == [-25.0, -7.0, 3.5]


def test_margin_masks_select_exactly_the_separated_samples():
    """ID inside ``E <= m_in``, outliers inside ``E >= m_aux``; at the margin counts as inside."""
    e_in = energy(_rows_with_energy([-30.0, -25.0, -24.999, -10.0, 5.0]))
    e_aux = energy(_rows_with_energy([-30.0, -7.001, -7.0, -6.5, 0.0]))
    in_mask, aux_mask = margin_masks(e_in, e_aux, -25.0, -7.0)
    assert in_mask.tolist() == [True, True, False, False, False]
    assert aux_mask.tolist() == [False, False, True, True, True]
    # the hinge is zero exactly on the masked samples
    hinge_in = torch.relu(e_in + 25.0).pow(2)
    hinge_aux = torch.relu(-7.0 - e_aux).pow(2)
    assert ((hinge_in == 0) == in_mask).all() and ((hinge_aux == 0) == aux_mask).all()


@pytest.mark.parametrize("grad_norm", ["paper", "authors"])
def test_greg_terms_normalise_over_whole_batches(grad_norm):
    """Energies ``E_i = base_i + s_i·(w·x_i)`` at ``x = 0``: ``‖∇E_i‖ = |s_i|·‖w‖`` exactly, so L_∇
    is known in closed form; both means run over the whole ID / outlier batch (docs/methods.md), and the
    authors' scale divides by the N = 7 rows. Samples exactly at a margin count in the paper's mask;
    in the authors' reduction the relu's derivative is 0 there."""
    base_in, base_aux = [-30.0, -25.0, -20.0, -26.0], [-8.0, -7.0, 0.0]
    scale = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], dtype=torch.float64)
    w = torch.arange(1.0, 10.0, dtype=torch.float64).view(1, 9)
    x = torch.zeros(7, 9, dtype=torch.float64, requires_grad=True)
    e = torch.tensor(base_in + base_aux, dtype=torch.float64) + scale * (x * w).sum(1)
    wts = GRegWeights(m_in=-25.0, m_aux=-7.0, lambda_s=0.1, lambda_grad=1.0, grad_norm=grad_norm)
    terms = greg_terms(e, x, 4, wts)
    in_mask = np.array([True, True, False, True])
    aux_mask = np.array([False, True, True])
    wn = float(w.norm())
    if grad_norm == "paper":
        want_grad = scale[:4].numpy()[in_mask].sum() * wn / 4 + scale[4:].numpy()[aux_mask].sum() * wn / 3
    else:  # strictly inside: ID -30, -26 (not -25); outliers 0 (not -7)
        want_grad = ((1.0 + 4.0) * wn / 4 + 7.0 * wn / 3) / 7
    want_s = (5.0 ** 2) / 4 + (1.0 ** 2) / 3  # ID -20 is 5 above m_in; outlier -8 is 1 below m_aux
    assert terms.in_mask.tolist() == in_mask.tolist() and terms.aux_mask.tolist() == aux_mask.tolist()
    assert float(terms.l_grad) == pytest.approx(want_grad, rel=1e-12)
    assert float(terms.l_s) == pytest.approx(want_s, rel=1e-12)
    assert float(terms.loss) == pytest.approx(0.1 * want_s + want_grad, rel=1e-12)
    assert float(energy_hinge(e[:4], e[4:], -25.0, -7.0)) == pytest.approx(want_s, rel=1e-12)
    # the loss is differentiable through the gradient norms (double backprop): d/ds_i of L_∇
    terms.loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_greg_terms_refuse_bad_inputs():
    e = torch.zeros(4)
    with pytest.raises(ValueError, match="require grad"):
        input_gradient_norms(e, torch.zeros(4, 3), torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_in"):
        greg_terms(e, torch.zeros(4, 3, requires_grad=True), 4)


def _authors_jacobian_term(net, data, n_in, m_in, m_out):
    """The authors' L_∇ (``train_sea.py``, ``--oodMethod energy``), written out as their script
    computes it: the Jacobian of one scalar w.r.t. the whole batch (a second forward inside), rows
    flattened, each row's L2 norm, the mean over the N rows."""
    def jacobian_loss_function(inputs):
        logits = net(inputs)
        energy_in = -torch.logsumexp(logits[:n_in], 1)
        energy_out = -torch.logsumexp(logits[n_in:], 1)
        return -(torch.relu(m_in - energy_in)).mean() + (torch.relu(energy_out - m_out)).mean()

    jac = torch.autograd.functional.jacobian(jacobian_loss_function, data, True)
    jac = jac.reshape(jac.shape[0], -1)
    return torch.linalg.norm(jac, 2, 1).mean()


def _net_with_spread_energies(batch_norm: bool) -> nn.Module:
    """A tiny conv net (1x6x6 inputs, float64) whose energies spread over several units, so margins
    can fall between samples; with ``batch_norm`` the samples of a batch are coupled in train mode."""
    torch.manual_seed(3)
    layers = [nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(64, 16)]
    layers += [nn.BatchNorm1d(16)] if batch_norm else []
    layers += [nn.Tanh(), nn.Linear(16, 5)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        net[-1].weight.mul_(8.0)
    return net.train()


@pytest.mark.parametrize("batch_norm", [False, True])
def test_authors_reduction_equals_their_jacobian(batch_norm):
    """On a hand-made batch with ID and outlier rows on both sides of their margins, our L_∇
    (``grad_norm: authors``) equals the authors' Jacobian reduction, value and parameter gradient
    (the double-backprop path), to 1e-9 in float64; without batch coupling the paper's form is
    exactly N times it."""
    net = _net_with_spread_energies(batch_norm)
    g = torch.Generator().manual_seed(0)
    data = torch.randn(10, 1, 6, 6, generator=g, dtype=torch.float64)
    n_in = 6
    with torch.no_grad():
        e = -torch.logsumexp(net(data), 1)
    e_in, e_aux = e[:n_in].sort().values, e[n_in:].sort().values
    m_in = float(e_in[2] + e_in[3]) / 2  # 3 ID rows below the margin, 3 above
    m_aux = float(e_aux[1] + e_aux[2]) / 2  # 2 outliers above, 2 below

    ref = _authors_jacobian_term(net, data, n_in, m_in, m_aux)
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))

    x = data.clone().requires_grad_(True)
    energies = energy(net(x))
    w = GRegWeights(m_in=m_in, m_aux=m_aux, lambda_s=0.0, lambda_grad=1.0, grad_norm="authors")
    terms = greg_terms(energies, x, n_in, w)
    assert terms.in_mask.sum() == 3 and terms.aux_mask.sum() == 2
    assert float(terms.l_grad) == pytest.approx(float(ref), rel=1e-9, abs=1e-12)
    ours_grads = torch.autograd.grad(terms.loss, list(net.parameters()))
    for a, b in zip(ours_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    if not batch_norm:
        x2 = data.clone().requires_grad_(True)
        paper = greg_terms(energy(net(x2)), x2, n_in,
                           GRegWeights(m_in=m_in, m_aux=m_aux, lambda_grad=1.0, grad_norm="paper"))
        assert float(paper.l_grad) == pytest.approx(len(data) * float(ref), rel=1e-9)
    # the reference is the term the authors' code adds (λ_∇ = --jacobianLoss = 1): not zero here
    assert float(ref) > 0


def test_authors_term_refuses_inputs_without_grad_and_bad_convention():
    with pytest.raises(ValueError, match="require grad"):
        authors_gradient_term(torch.zeros(4), torch.zeros(4, 3), 2)
    with pytest.raises(ValueError, match="grad_norm"):
        GRegWeights(grad_norm="mean")


# ----------------------------------------------------------------------------------- K-Means
def test_kmeans_matches_scikit_learn():
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score

    x, _ = make_blobs(600, n_features=8, centers=12, cluster_std=0.3, random_state=0)
    ours = kmeans(torch.from_numpy(x), 12, 3, torch.Generator().manual_seed(0))
    ref = KMeans(12, n_init=3, random_state=0).fit(x)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-9)
    assert adjusted_rand_score(ref.labels_, ours.labels.numpy()) == 1.0
    # a hard case like a GReg+ pool: 768 unit vectors in 84 dimensions, 64 clusters
    rng = np.random.default_rng(1)
    u = rng.normal(size=(768, 84))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    ours = kmeans(torch.from_numpy(u), 64, 3, torch.Generator().manual_seed(1))
    ref = KMeans(64, n_init=3, random_state=1).fit(u)
    assert ours.inertia <= 1.02 * ref.inertia_
    d = ((u[:, None, :] - ours.centres.numpy()[None]) ** 2).sum(2)
    assert ours.labels.numpy().tolist() == d.argmin(1).tolist()
    assert ours.inertia == pytest.approx(d.min(1).sum(), rel=1e-9)


def test_kmeans_is_seeded_and_checks_k():
    x = torch.randn(200, 5)
    a = kmeans(x, 7, 3, torch.Generator().manual_seed(4))
    b = kmeans(x, 7, 3, torch.Generator().manual_seed(4))
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centres, b.centres)
    with pytest.raises(ValueError, match="k"):
        kmeans(x, 201)
    # fewer distinct points than clusters: seeding falls back to uniform draws, no crash
    dup = torch.zeros(10, 3)
    assert kmeans(dup, 4).inertia == 0.0


# ----------------------------------------------------------------------------------- the sampler
def _authors_choice(labels: np.ndarray, energies: np.ndarray, outliers: int, k: int,
                    two_way: bool) -> set[int]:
    """The cluster picks of the authors' ``clusterAndChooseSamples`` (spt = 0, the whole pool),
    written out from their loop: per cluster ``int(B / k)`` lowest and, two-way, highest members."""
    size = 1 if k > outliers else int(outliers / k)
    picked: list[int] = []
    for i in range(min(k, outliers)):
        valid = np.where(labels == i)[0]
        if len(valid) <= size:
            picked.extend(valid)
        else:
            ranked = valid[np.argsort(energies[valid], kind="stable")]
            add = list(ranked[:size])
            if two_way:
                add = np.unique(np.concatenate([add, ranked[-size:]])).tolist()
            picked.extend(add)
    return {int(i) for i in picked}


@pytest.mark.parametrize("outliers,k", [(16, 4), (12, 5), (64, 64), (3, 8), (20, 1)])
@pytest.mark.parametrize("with_highest", [True, False])
def test_selection_is_the_authors_per_cluster_choice(outliers, k, with_highest):
    """On random cluster labels (sizes from 0 to many) and distinct energies, the picks are exactly
    the authors' loop's, then a seeded uniform fill from the rest up to B (or 2B two-way)."""
    rng = np.random.default_rng(outliers * 10 + k)
    n = 4 * outliers + 40
    labels = rng.integers(0, k, n)
    energies = rng.permutation(n).astype(np.float64)
    want = _authors_choice(labels, energies, outliers, k, with_highest)
    got = select_from_clusters(torch.from_numpy(labels), torch.from_numpy(energies), outliers, k,
                               with_highest, torch.Generator().manual_seed(1))
    target = outliers * (2 if with_highest else 1)
    assert len(got) == target and len(set(got.tolist())) == target
    assert set(got[: len(want)].tolist()) == want
    again = select_from_clusters(torch.from_numpy(labels), torch.from_numpy(energies), outliers, k,
                                 with_highest, torch.Generator().manual_seed(1))
    assert torch.equal(got, again)


def test_sampler_takes_b_over_k_from_each_end_of_each_cluster():
    """A pool of 4 clusters built to be found (10, 10, 3 and 12 members), B = 16, k = 4: s = 4 from
    each end of each cluster (the 3-member one gives all 3), 27 picks, filled at random to 2B = 32;
    one way, 4 + 4 + 3 + 4 = 15 lowest, filled to 16."""
    g = torch.Generator().manual_seed(0)
    sizes = [10, 10, 3, 12]
    truth = torch.cat([torch.full((m,), c) for c, m in enumerate(sizes)])
    feats = torch.eye(8)[truth] * 5 + 0.05 * torch.randn(len(truth), 8, generator=g)
    feats = feats * torch.exp(torch.rand(len(truth), 1, generator=g) * 4.6)  # norms vary 1-100x
    energies = torch.randperm(len(truth), generator=g).double()
    low, high = set(), set()
    for c, m in enumerate(sizes):
        members = torch.nonzero(truth == c).squeeze(1)
        ranked = members[torch.argsort(energies[members])].tolist()
        low |= set(ranked[:4])
        high |= set(ranked[-4:])
    picked = energy_based_selection(feats, energies, 16, 4, True, 3, torch.Generator().manual_seed(0))
    assert len(picked) == 32 and len(set(picked.tolist())) == 32
    assert set(picked[:27].tolist()) == low | high and len(low | high) == 27
    one_way = energy_based_selection(feats, energies, 16, 4, False, 3, torch.Generator().manual_seed(0))
    assert len(one_way) == 16 and set(one_way[:15].tolist()) == low


def test_selection_ties_and_bad_sizes():
    """Equal energies: the lower pool index counts as the lower energy (a stable order)."""
    labels = torch.tensor([0, 1, 0, 1, 2, 0])
    e = torch.tensor([1.0, 5.0, 1.0, -2.0, 0.0, 3.0])
    low = select_from_clusters(labels, e, 3, 3, False)
    assert low.tolist() == [0, 3, 4]
    both = select_from_clusters(labels, e, 3, 3, True)
    assert both.tolist() == [0, 5, 3, 1, 4, 2]  # cluster 0: lowest 0, highest 5; then the fill
    with pytest.raises(ValueError, match="pool"):
        select_from_clusters(labels, e, 4, 3, True)
    with pytest.raises(ValueError, match="clusters"):
        energy_based_selection(torch.randn(6, 3), e, 2, 7)


# ----------------------------------------------------------------------------------- aux data
FEW_FONTS = ["fonts-dejavu-extra"]


@pytest.mark.slow  # builds a dataset: the slow tier
def test_font_glyphs_build_deterministic_without_test_letters():
    from grood.data.letters import LETTERS, load_face, mnist_style, named_glyphs
    from grood.data.fonts import font_files

    a = build_dataset("font_glyphs", {"packages": FEW_FONTS}, RAW)
    b = build_dataset("font_glyphs", {"packages": FEW_FONTS, "n": 300, "seed": 1}, RAW)
    c = build_dataset("font_glyphs", {"packages": FEW_FONTS, "n": 300, "seed": 1}, RAW)
    x, y = a["x_test"], a["y_test"]
    assert np.array_equal(b["x_test"], c["x_test"]) and np.array_equal(b["y_test"], c["y_test"])
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and len(x) > 500 and len(b["x_test"]) == 300
    assert a["meta"]["role"].startswith("auxiliary outliers")
    chars = {AUX_GLYPHS[c] for c in np.unique(y)}
    assert not chars & set(LETTERS) and not chars & set("0123456789")
    assert {"K", "Z", "?", "+"} <= chars
    # no image equals what letters_fonts draws for A-J with these fonts
    files, _, _ = font_files(RAW, FEW_FONTS)
    letters = {mnist_style(ink).tobytes() for label, data in files
               if (face := load_face(data, label)) for ink in face[1]}
    assert letters and not any(img.tobytes() in letters for img in x)
    # urw-base35's symbol font maps K, Q, Z to Kappa, Theta, Zeta: no Greek enters as Latin
    symbol = [data for label, data in font_files(RAW, ["fonts-urw-base35"])[0]
              if label.endswith("StandardSymbolsPS.otf")]
    assert symbol and named_glyphs(symbol[0], "KQZ+") == {"+"}


def test_scrambled_train_never_reads_the_test_split(tmp_path):
    """A base whose training images are black and whose test images are noise: any non-zero pixel
    in the output would have come from the test split."""
    rng = np.random.default_rng(0)
    path = tmp_path / "base.npz"
    np.savez(path, x_train=np.zeros((50, 28, 28), np.uint8), y_train=np.arange(50) % 5,
             x_test=rng.integers(1, 256, (40, 28, 28)).astype(np.uint8), y_test=np.arange(40) % 5)
    out = build_dataset("scrambled_train", {"base": "npz", "base_params": {"path": str(path)}, "n": 120}, RAW)
    assert out["x_test"].shape == (120, 28, 28) and out["x_test"].max() == 0
    assert (out["y_test"] == -1).all() and out["meta"]["kind_counts"] == {"patch_shuffle": 60, "warp": 60}


@pytest.mark.slow  # builds a dataset: the slow tier
def test_scrambled_train_from_mnist_is_deterministic_and_made_of_training_tiles():
    a = build_dataset("scrambled_train", {"base": "mnist", "n": 400, "seed": 2}, RAW)
    mnist = build_dataset("mnist", {}, RAW)
    test_images = {img.tobytes() for img in mnist["x_test"]}
    assert not any(img.tobytes() in test_images for img in a["x_test"])
    x, src, kind = scramble(mnist["x_train"], 400, ["patch_shuffle", "warp"], 2)
    assert np.array_equal(x, a["x_test"])  # the builder is scramble() of the training split
    assert np.array_equal(x, scramble(mnist["x_train"], 400, ["patch_shuffle", "warp"], 2)[0])
    assert not np.array_equal(x, scramble(mnist["x_train"], 400, ["patch_shuffle", "warp"], 3)[0])
    for img, s in zip(x[kind == 0], src[kind == 0]):  # its 4x4 tiles are its source image's
        assert _tiles(img, 4) == _tiles(mnist["x_train"][s], 4)
    assert not any(np.array_equal(img, mnist["x_train"][s]) for img, s in zip(x, src))
    assert a["meta"]["licence"].startswith(mnist["meta"]["licence"])  # the base's licence, named


def _tiles(img: np.ndarray, p: int) -> list[bytes]:
    """The image's p x p tiles (all channels), as a sorted list of their bytes."""
    h, w = img.shape[:2]
    t = img.reshape(h // p, p, w // p, p, -1).swapaxes(1, 2).reshape((h // p) * (w // p), -1)
    return sorted(row.tobytes() for row in t)


def test_patch_shuffle_permutes_tiles_of_colour_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    y = patch_shuffle(x, 4, np.random.default_rng(1))
    assert all(_tiles(a, 4) == _tiles(b, 4) for a, b in zip(x, y)) and not np.array_equal(x, y)
    with pytest.raises(DataError, match="patch"):
        patch_shuffle(x, 3, rng)


@pytest.mark.parametrize("params,needle", [
    ({"base": "letters_fonts"}, "training split"),
    ({"base": "nope"}, "training split"),
    ({"base": "mnist", "base_params": {"split": "test"}}, "split 'test'"),
    ({"base": "mnist", "base_params": {"max_train": 0}}, "max_train"),
    ({"base": "mnist", "kinds": ["blur"]}, "kinds"),
    ({"base": "mnist", "patch": 1}, "patch"),
    ({"base": "mnist", "warp_alpha": 0}, "warp_alpha"),
    ({}, "base"),
])
def test_scrambled_train_bad_params(params, needle):
    with pytest.raises(DataError, match=needle):
        build_dataset("scrambled_train", params, RAW)


def test_font_glyphs_bad_packages():
    with pytest.raises(DataError, match="not a pinned font package"):
        build_dataset("font_glyphs", {"packages": ["fonts-noto"]}, RAW)


# ----------------------------------------------------------------------------------- aux_overlap
GAUSS1 = {"source": "noise", "kind": "gaussian", "seed": 1}


@pytest.mark.parametrize("aux,other,fires", [
    ({"source": "font_glyphs"}, {"source": "letters_fonts"}, False),  # K-Z and symbols vs A-J
    ({"source": "font_glyphs"}, {"source": "font_glyphs", "n": 10}, True),
    ({"source": "font_glyphs", "classes": [0]}, {"source": "font_glyphs", "classes": [1]}, False),
    ({"source": "scrambled_train", "base": "mnist"}, {"source": "fashion_mnist"}, False),
    ({"source": "scrambled_train", "base": "mnist"}, {"source": "mnist"}, True),
    ({"source": "scrambled_train", "base": "fashion_mnist"},
     {"source": "scrambled_train", "base": "fashion_mnist", "seed": 3}, True),
    ({"source": "textures"}, {"source": "textures", "n": 10, "seed": 4}, True),
    (GAUSS1, {**GAUSS1, "n": 7}, True),
    (GAUSS1, {**GAUSS1, "seed": 2}, False),
    (GAUSS1, {**GAUSS1, "kind": "uniform"}, False),
    ({"source": "image_folder", "path": "/data/aux"}, {"source": "image_folder", "path": "/data/aux/"}, True),
    ({"source": "image_folder", "path": "/data/aux"}, {"source": "cifar10", "path": "/data"}, True),
    ({"source": "image_folder", "path": "/data/aux"}, {"source": "image_folder", "path": "/data/auxiliary"}, False),
    ({"source": "animal_mnist"}, {"source": "textures"}, False),
])
def test_aux_overlap(aux, other, fires):
    why = aux_overlap("aux_set", aux, "test_set", other)
    assert (why is not None) == fires, why
    if fires:
        assert "aux_set" in why and "test_set" in why


def test_aux_overlap_same_name_and_card_role():
    assert "itself" in aux_overlap("a", {"source": "mnist"}, "a", {"source": "mnist"})
    aux = "auxiliary outliers (training only)"
    r = roles({"b": {"id": "mnist", "ood": {"letters": "near"}, "aux": ["glyphs", "scrambled"]},
               "c": {"id": "mnist", "ood": {"letters": "far"}, "aux": "glyphs"}})
    assert r == {"mnist": {"b": "ID", "c": "ID"}, "letters": {"b": "near", "c": "far"},
                 "glyphs": {"b": aux, "c": aux}, "scrambled": {"b": aux}}


# ----------------------------------------------------------------------------------- training
def _mnist_small():
    """256 MNIST training images and 1,000 scrambled training images as outliers."""
    m = build_dataset("mnist", {"max_train": 256}, RAW)
    aux = scramble(m["x_train"], 1000, ["patch_shuffle", "warp"], 1)[0]
    return m["x_train"], m["y_train"], aux


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_greg_plus_run_finishes_and_is_deterministic():
    """A GReg+ fine-tune of a 1-epoch CE LeNet on 256 MNIST images, twice: identical weights."""
    torch.set_num_threads(1)
    x, y, aux = _mnist_small()
    base = train(x, y, TrainConfig.from_dict({"epochs": 1, "batch_size": 64, "precision": "fp32"}), CPU)
    init = _weights(base.model)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 64, "lr": 0.001, "precision": "fp32",
                                 "method": "greg_plus", "init": "ce_backbone", "seed": 5})
    runs = [train(x, y, cfg, CPU, aux, init=init) for _ in range(2)]
    a, b = (_weights(r.model) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    row = runs[0].history[0]
    timing = ("seconds", "sampler_seconds", "sampler_ms_per_step")
    assert {k: v for k, v in row.items() if k not in timing} == \
        {k: v for k, v in runs[1].history[0].items() if k not in timing}
    for key in ("ce", "l_s", "l_grad", "in_mask", "aux_mask", "energy_in", "energy_aux",
                "sampler_ms_per_step"):
        assert np.isfinite(row[key]), key
    assert 0 <= row["in_mask"] <= 1 and 0 <= row["aux_mask"] <= 1
    assert row["l_s"] > 0  # a 1-epoch LeNet is nowhere near m_in = -25
    assert all(torch.isfinite(v).all() for v in a.values())
    assert not all(torch.equal(a[k], init[k]) for k in a)


def test_greg_with_zero_weights_follows_the_ce_run():
    """λ_S = λ_∇ = 0: GReg's ID batches, augmentation and initial weights are CE's (the outliers
    have a random stream of their own), so the weights agree up to float summation order."""
    torch.set_num_threads(1)
    x, y, aux = _mnist_small()
    common = {"epochs": 1, "batch_size": 64, "precision": "fp32", "augment": "shift", "seed": 2}
    ce = train(x, y, TrainConfig.from_dict(common), CPU)
    greg = train(x, y, TrainConfig.from_dict({**common, "method": "greg", "lambda_s": 0.0,
                                              "lambda_grad": 0.0}), CPU, aux)
    for k, v in _weights(ce.model).items():
        torch.testing.assert_close(greg.model.state_dict()[k], v, rtol=1e-4, atol=1e-5)


def _reference_ce_training(images, labels, cfg: TrainConfig) -> nn.Module:
    """grood's CE training loop as it was before GReg (commit 8b0ba13), written out: the CE path
    must still give exactly these weights."""
    from grood.net.device import seed_everything
    from grood.net.preprocess import spec_from_training, to_tensor

    g = seed_everything(cfg.seed)
    y_np, classes = encode_labels(labels)
    spec = spec_from_training(images)
    x_all, y_all = to_tensor(images, spec, "training images"), torch.from_numpy(y_np)
    model = build_model(cfg.arch, spec.channels, len(classes), cfg.width, spec.size)
    model = model.to(memory_format=torch.channels_last)
    steps = -(-len(x_all) // cfg.batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=cfg.nesterov and cfg.momentum > 0)
    sched = make_scheduler(opt, cfg.scheduler, cfg.lr, steps * cfg.epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x_all), generator=g)
        for i in range(steps):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            xb = augment_batch(x_all[idx], cfg.augment, g, spec).to(memory_format=torch.channels_last)
            loss = loss_fn(model(xb).float(), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model


@pytest.mark.parametrize("arch,augment", [("lenet5", "shift"), ("cnn_bn_gap", "crop_flip")])
def test_ce_path_unchanged(arch, augment):
    torch.set_num_threads(1)
    m = build_dataset("mnist", {"max_train": 300}, RAW)
    cfg = TrainConfig.from_dict({"arch": arch, "epochs": 2, "batch_size": 64, "augment": augment,
                                 "precision": "fp32", "seed": 3})
    ours = train(m["x_train"], m["y_train"], cfg, CPU).model.state_dict()
    ref = _reference_ce_training(m["x_train"], m["y_train"], cfg).state_dict()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    row = train(m["x_train"][:64], m["y_train"][:64], TrainConfig.from_dict({"epochs": 1}), CPU).history[0]
    assert set(row) == {"epoch", "loss", "train_acc", "lr", "seconds"}


@pytest.mark.parametrize("options,needle", [
    ({"method": "energy"}, "train.method"),
    ({"method": "greg", "m_in": -5, "m_aux": -7}, "train.m_in"),
    ({"method": "greg", "lambda_grad": -1}, "lambda"),
    ({"method": "greg", "m_in": "low"}, "train.m_in"),
    ({"m_in": -20}, "only method greg and greg_plus"),
    ({"method": "greg", "pool_size": 512}, "only method greg_plus"),
    ({"method": "greg_plus", "batch_size": 64, "aux_batch_size": 200}, "train.pool_size"),
    ({"method": "greg", "grad_norm": "mean"}, "train.grad_norm"),
    ({"grad_norm": "paper"}, "only method greg and greg_plus"),
    ({"method": "greg_plus", "pool_size": 100}, "train.pool_size"),
    ({"method": "greg_plus", "clusters": 0}, "train.clusters"),
    ({"init": 3}, "train.init"),
])
def test_bad_greg_options_are_named(options, needle):
    with pytest.raises(ValueError, match=needle):
        TrainConfig.from_dict(options)


def test_train_refuses_mismatched_outliers_and_init():
    x = np.zeros((8, 28, 28), np.uint8)
    y = np.arange(8) % 2
    with pytest.raises(ValueError, match="needs auxiliary outlier images"):
        train(x, y, TrainConfig.from_dict({"method": "greg"}), CPU)
    with pytest.raises(ValueError, match="does not use them"):
        train(x, y, TrainConfig(), CPU, aux_images=x)
    with pytest.raises(ValueError, match="train.init"):
        train(x, y, TrainConfig.from_dict({"init": "mnist"}), CPU)
    with pytest.raises(ValueError, match="do not fit"):
        train(x, y, TrainConfig.from_dict({"init": "mnist"}), CPU,
              init=build_model("lenet5", 1, 10).state_dict())


def test_defaults_are_the_authors():
    cfg = TrainConfig.from_dict({"method": "greg_plus", "batch_size": 64})
    assert (cfg.m_in, cfg.m_aux, cfg.lambda_s, cfg.lambda_grad) == (-25.0, -7.0, 0.1, 1.0)
    assert (cfg.pool, cfg.aux_batch, cfg.aux_step, cfg.n_clusters, cfg.kmeans_n_init) == (384, 64, 128, 64, 3)
    assert cfg.grad_norm == "authors" and cfg.with_highest
    # the authors' CIFAR-10 GReg+ script: batch 32, 32 clusters, two-way: 32 + 64 rows, pool 192
    plus = TrainConfig.from_dict({"method": "greg_plus", "batch_size": 32, "clusters": 32})
    assert (plus.n_clusters, plus.aux_batch, plus.aux_step, plus.pool) == (32, 32, 64, 192)
    greg = TrainConfig.from_dict({"method": "greg", "batch_size": 64})
    assert (greg.aux_batch, greg.aux_step) == (64, 64)


# ----------------------------------------------------------------------------------- slow checks
@pytest.mark.slow
def test_full_font_glyphs_share_no_image_with_letters_fonts():
    glyphs = build_dataset("font_glyphs", {}, RAW)
    letters = build_dataset("letters_fonts", {}, RAW)
    seen = {img.tobytes() for img in letters["x_test"]}
    assert not any(img.tobytes() in seen for img in glyphs["x_test"])
    assert glyphs["meta"]["faces"] >= 500 and len(glyphs["x_test"]) > 20000
    counts = np.bincount(glyphs["y_test"], minlength=len(AUX_GLYPHS))
    assert (counts > 50).all()  # every character drawn by many faces


@pytest.mark.slow
def test_scrambled_mnist_is_beyond_recognition():
    """A LeNet trained on MNIST (1 epoch, > 95% on clean images) is at chance on scrambled
    training images, scored against the digit each was made from."""
    torch.set_num_threads(2)
    m = build_dataset("mnist", {"max_train": 20000}, RAW)
    r = train(m["x_train"], m["y_train"], TrainConfig.from_dict({"epochs": 1, "precision": "fp32"}), CPU)
    x, src, kind = scramble(m["x_train"], 3000, ["patch_shuffle", "warp"], 0)
    from grood.net.forward import forward_batches

    def acc(images, labels):
        return float((forward_batches(r.model, images, r.spec, CPU)["logits"].argmax(1) == labels).mean())

    assert acc(m["x_train"][src], m["y_train"][src]) > 0.95
    for k in (0, 1):
        assert acc(x[kind == k], m["y_train"][src[kind == k]]) < 0.2


# ----------------------------------------------------------------------------------- the config
def _config_problems(cfg: dict) -> str:
    """The workflow's checks (schema with defaults, the detector suite, then grood.config.validate);
    '' if accepted."""
    from snakemake.utils import validate as schema_validate
    from snakemake_interface_common.exceptions import WorkflowError

    import grood.config

    try:
        schema_validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    except WorkflowError as e:
        return str(e)
    grood.config.expand_suites(cfg, grood.config.load_suites(REPO / "config" / "suites.yaml"))
    return "\n".join(grood.config.validate(cfg))


def test_greg_config_is_accepted_and_ce_settings_stay_as_before():
    import copy

    import yaml

    import grood.config
    from snakemake.utils import validate as schema_validate

    assert _config_problems(greg_config()) == ""
    assert _config_problems(greg_config(aux="aux_scrambled")) == ""  # one name, not a list
    for name in ("config.yaml", "greg.yaml", "test.yaml"):
        assert _config_problems(yaml.safe_load((REPO / "config" / name).read_text())) == "", name
    # a CE benchmark's train params are what they were before GReg: no keys from the new defaults
    cfg = greg_config()
    raw = copy.deepcopy(cfg["benchmarks"]["tiny"]["train"])
    schema_validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    filled = cfg["benchmarks"]["tiny"]["train"]
    assert "m_in" in filled and "method" in filled  # the schema filled the defaults in
    settings = grood.config.train_settings(filled)
    assert not set(settings) & {"method", "init", "m_in", "m_aux", "lambda_s", "lambda_grad",
                                "aux_batch_size", "pool_size", "clusters", "kmeans_n_init",
                                "with_highest"}
    assert {k: settings[k] for k in raw} == raw
    plus = grood.config.train_settings(cfg["benchmarks"]["tiny_greg_plus"]["train"])
    assert plus["method"] == "greg_plus" and plus["init"] == "tiny" and plus["m_in"] == -25
    greg = grood.config.train_settings({**plus, "method": "greg"})
    assert "m_in" in greg and "pool_size" not in greg and "clusters" not in greg


@pytest.mark.parametrize("edit,needles", [
    # the overlap check: the aux set shares a source / generator / characters with a test set
    (lambda c: c["datasets"].update(aux_scrambled={"source": "scrambled_train", "base": "fashion_mnist"}),
     ["'aux_scrambled'", "'fashion_tiny'", "same source", "benchmarks.tiny"]),
    (lambda c: c["datasets"].update(aux_scrambled={"source": "noise", "kind": "gaussian", "n": 50, "seed": 7}),
     ["'aux_scrambled'", "'gaussian_tiny'", "same generator"]),
    (lambda c: (c["datasets"].update(letters={"source": "letters_fonts"}),
                c["benchmarks"]["tiny"]["ood"].update(letters="near"),
                c["datasets"].update(aux_glyphs={"source": "letters_fonts", "classes": [9]})),
     ["'aux_glyphs'", "'letters'", "common character"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"].update(aux=["fashion_tiny"]),
     ["benchmarks.tiny_greg_plus.aux", "'fashion_tiny'", "itself"]),
    # method and aux go together
    (lambda c: c["benchmarks"]["tiny_greg_plus"].pop("aux"),
     ["benchmarks.tiny_greg_plus.aux", "greg_plus trains on auxiliary outliers"]),
    (lambda c: c["benchmarks"]["tiny"].update(aux="aux_glyphs"),
     ["benchmarks.tiny.aux", "method ce does not use"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"].update(aux=["nope"]),
     ["benchmarks.tiny_greg_plus.aux", "'nope' is not a dataset"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"].update(aux="mnist_tiny"),
     ["benchmarks.tiny_greg_plus.aux", "ID set"]),
    # the training options and train.init
    (lambda c: c["benchmarks"]["tiny_greg_plus"]["train"].update(m_in=-5),
     ["benchmarks.tiny_greg_plus.train.m_in", "below train.m_aux"]),
    (lambda c: c["benchmarks"]["tiny"]["train"].update(pool_size=64),
     ["benchmarks.tiny.train.pool_size", "only method greg_plus"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"]["train"].update(init="nope"),
     ["benchmarks.tiny_greg_plus.train.init", "'nope' is not a benchmark"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"]["train"].update(arch="cnn_bn_gap"),
     ["benchmarks.tiny_greg_plus.train.init", "same ID set, arch and width"]),
    (lambda c: c["benchmarks"]["tiny"]["train"].update(init="tiny_greg_plus"),
     ["train.init", "cycle"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"]["train"].update(method="gregg"),
     ["method", "gregg"]),
    (lambda c: c["benchmarks"]["tiny_greg_plus"]["train"].update(checkpoint="/models/lenet.pt"),
     ["benchmarks.tiny_greg_plus.train.method", "adopts a network without training"]),
])
def test_bad_greg_configs_are_refused_naming_the_key(edit, needles):
    cfg = greg_config()
    edit(cfg)
    found = _config_problems(cfg)
    for needle in needles:
        assert needle in found, (needle, found)
