"""The post-hoc baselines of docs/baselines.md, each against an independent reference on the
same arrays: pytorch-ood (a test-only dependency) where it implements the method, otherwise numbers
worked out here by hand, or autograd.  Plus what every detector owes: a pickle-free round trip,
ID above obvious OOD, and bad parameters named."""

import math

import numpy as np
import pytest
import torch

from grood.detectors import METHODS, check_detector, make_detector
from grood.detectors.store import load_detector, save_detector

C, D = 5, 12
LIVE = 8  # units the ID classes use
NEW = ("react", "ash", "scale", "dice", "vim", "gen", "klm", "rmds", "she", "gradorth", "gaia")


# ------------------------------------------------------------------------------------------ fixtures

def _head(seed=0):
    """A real nn.Linear (float64) whose rows point at the class means: a 'trained' head."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.5, 3.0, size=(C, D)) * (rng.random((C, D)) < 0.6) + 0.05
    means[:, LIVE:] = 0.0  # the ID classes never use the last units (the OOD set does)
    lin = torch.nn.Linear(D, C).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(means / np.linalg.norm(means, axis=1, keepdims=True) * 2.0))
        lin.bias.copy_(torch.as_tensor(rng.normal(scale=0.3, size=C)))
    return lin, means


def _part(rng, n, lin, means, ood=False):
    y = rng.integers(0, C, n)
    if ood:  # no class structure, a similar norm, on the units ID data leaves (nearly) silent
        h = np.concatenate([rng.uniform(0.0, 0.3, size=(n, LIVE)), rng.uniform(1.0, 3.0, size=(n, D - LIVE))], 1)
    else:
        h = np.abs(means[y] + rng.normal(scale=0.3, size=(n, D))) + 1e-3  # positive, no ties
    with torch.no_grad():
        z = lin(torch.as_tensor(h)).numpy()
    g_a = rng.normal(size=(n, 7)) * (3.0 if ood else 1.0)
    g_z = rng.uniform(0.5 if ood else 0.0, 1.0 if ood else 0.5, size=(n, 9))
    return {"features": h, "logits": z, "labels": y if not ood else np.full(n, -1), "gaia_a": g_a, "gaia_z": g_z}


@pytest.fixture(scope="module")
def data():
    lin, means = _head()
    head = {"head_weight": lin.weight.detach().numpy().copy(), "head_bias": lin.bias.detach().numpy().copy()}
    train = {**_part(np.random.default_rng(1), 600, lin, means), **head}
    return {"train": train, "test": _part(np.random.default_rng(2), 80, lin, means),
            "ood": _part(np.random.default_rng(3), 80, lin, means, ood=True), "lin": lin, "head": head}


def _fit(method, data, **params):
    det = make_detector(method, params)
    return det.fit(**{k: data["train"][k] for k in det.fit_requires})


def _score(det, arrays):
    return det.score(**{k: arrays[k] for k in det.requires})


def _energy(z):
    z = np.asarray(z, dtype=np.float64)
    return np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)


@pytest.fixture(scope="module")
def pood():
    return pytest.importorskip("pytorch_ood.detector", reason="pytorch-ood (the test extra) cross-checks")


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------------------------------------- ReAct (§1)

def test_react_equals_pytorch_ood(data, pood):
    for p in (80.0, 90.0):
        ours = _fit("react", data, percentile=p)
        ref = pood.ReAct(backbone=None, head=data["lin"], percentile=p / 100)
        ref.fit_feature_maps(_t(data["train"]["features"]), torch.as_tensor(data["train"]["labels"]))
        assert ours.threshold_ == pytest.approx(ref.threshold, rel=1e-12)
        for part in ("test", "ood"):
            theirs = -ref.predict_feature_maps(_t(data[part]["features"])).numpy()  # their score: −energy
            np.testing.assert_allclose(_score(ours, data[part]), theirs, rtol=1e-10)


def test_react_hand_worked():
    """Training activations 1..10 (one row): the 90th percentile is 1 + 0.9·9 = 9.1; a head W = I,
    b = 0 scores h = (12, 2) as log(e^9.1 + e^2)."""
    h_train = np.arange(1.0, 11.0).reshape(5, 2)
    w, b = np.eye(2), np.zeros(2)
    det = make_detector("react", {"percentile": 90}).fit(features=h_train, logits=h_train @ w.T,
                                                         head_weight=w, head_bias=b)
    assert det.threshold_ == pytest.approx(9.1)
    np.testing.assert_allclose(det.score(features=np.array([[12.0, 2.0]])), [math.log(math.exp(9.1) + math.exp(2))])


def test_react_clipping_tames_activation_spikes(data):
    """Huge single activations (the case ReAct was made for): energy ranks them above ID, ReAct below."""
    rng = np.random.default_rng(5)
    spikes = np.abs(rng.normal(scale=0.2, size=(80, D)))
    spikes[np.arange(80), rng.integers(0, D, 80)] = 60.0
    w, b = data["head"]["head_weight"], data["head"]["head_bias"]
    test = data["test"]["features"]
    assert np.median(_energy(spikes @ w.T + b)) > np.median(_energy(test @ w.T + b))
    react = _fit("react", data)
    assert (react.score(features=spikes) < np.median(react.score(features=test))).mean() > 0.9


# --------------------------------------------------------------------------------- ASH, SCALE (§2–3)

H5 = np.array([[4.0, 1.0, 3.0, 0.0, 2.0]])  # p = 60: k = 5 − round(3) = 2 kept (4 and 3); s1 = 10, s2 = 7


def _identity_fit(method, **params):
    w, b = np.eye(5), np.zeros(5)
    return make_detector(method, params).fit(features=H5, logits=H5, head_weight=w, head_bias=b)


@pytest.mark.parametrize("variant, shaped", [
    ("p", [4.0, 0, 3.0, 0, 0]),                                            # prune only
    ("b", [5.0, 0, 5.0, 0, 0]),                                            # s1/k = 10/2 on the kept
    ("s", [4 * math.exp(10 / 7), 0, 3 * math.exp(10 / 7), 0, 0]),          # kept × e^(s1/s2)
])
def test_ash_hand_worked(variant, shaped):
    det = _identity_fit("ash", variant=variant, percentile=60)
    expected = math.log(sum(math.exp(v) for v in shaped))  # head W = I, b = 0: the logits are the features
    np.testing.assert_allclose(det.score(features=H5), [expected], rtol=1e-12)


def test_scale_hand_worked():
    det = _identity_fit("scale", percentile=60)
    f = math.exp(10 / 7)  # nothing pruned: every activation × e^(s1/s2)
    np.testing.assert_allclose(det.score(features=H5), [math.log(sum(math.exp(v * f) for v in H5[0]))], rtol=1e-12)


@pytest.mark.parametrize("variant", ["s", "b", "p"])
@pytest.mark.parametrize("percentile", [50.0, 65.0, 90.0])
def test_ash_equals_pytorch_ood(data, pood, variant, percentile):
    from pytorch_ood.detector import ash as ref_ash

    shape = getattr(ref_ash, f"ash_{variant}")
    det = _fit("ash", data, variant=variant, percentile=percentile)
    for part in ("test", "ood"):
        h = _t(data[part]["features"])[:, :, None, None]
        with torch.no_grad():
            theirs = torch.logsumexp(data["lin"](shape(h, percentile / 100).flatten(1)), 1).numpy()
        np.testing.assert_allclose(_score(det, data[part]), theirs, rtol=1e-10)


@pytest.mark.parametrize("percentile", [50.0, 85.0, 95.0])
def test_scale_equals_pytorch_ood(data, pood, percentile):
    from pytorch_ood.detector.scale import scale as ref_scale

    det = _fit("scale", data, percentile=percentile)
    for part in ("test", "ood"):
        h = _t(data[part]["features"])[:, :, None, None]
        with torch.no_grad():
            theirs = torch.logsumexp(data["lin"](ref_scale(h, percentile / 100).flatten(1)), 1).numpy()
        np.testing.assert_allclose(_score(det, data[part]), theirs, rtol=1e-10)


def test_ash_and_scale_refuse_negative_features(data):
    for method in ("ash", "scale"):
        det = _fit(method, data)
        with pytest.raises(ValueError, match="non-negative"):
            det.score(features=-np.ones((2, D)))


# -------------------------------------------------------------------------------------- DICE (§4)

def test_dice_hand_worked():
    """mean h = (1, 2), W = [[1, −1], [0.5, 3]]: contributions [[1, −2], [0.5, 6]], their 50th
    percentile (0.5 + 1)/2 = 0.75, so W ⊙ M = [[1, 0], [0, 3]]."""
    h = np.array([[0.0, 1.0], [2.0, 3.0]])
    w, b = np.array([[1.0, -1.0], [0.5, 3.0]]), np.array([0.1, -0.2])
    det = make_detector("dice", {"sparsity": 50}).fit(features=h, logits=h @ w.T + b, head_weight=w, head_bias=b)
    assert det.threshold_ == pytest.approx(0.75)
    np.testing.assert_array_equal(det.masked_weight_, [[1.0, 0.0], [0.0, 3.0]])
    x = np.array([[2.0, 1.0]])
    np.testing.assert_allclose(det.score(features=x), [math.log(math.exp(2 + 0.1) + math.exp(3 - 0.2))])


@pytest.mark.parametrize("sparsity", [30.0, 70.0, 90.0])
def test_dice_equals_pytorch_ood(data, pood, sparsity):
    det = _fit("dice", data, sparsity=sparsity)
    ref = pood.DICE(encoder=None, w=data["lin"].weight, b=data["lin"].bias, p=sparsity / 100)
    ref.fit_features(_t(data["train"]["features"]), torch.as_tensor(data["train"]["labels"]))
    np.testing.assert_array_equal(det.masked_weight_ != 0, ref.masked_w.numpy() != 0)
    for part in ("test", "ood"):
        theirs = -ref.predict_features(_t(data[part]["features"])).numpy()
        np.testing.assert_allclose(_score(det, data[part]), theirs, rtol=1e-6)  # theirs: float32 weights


# --------------------------------------------------------------------------------------- ViM (§5)

@pytest.mark.parametrize("dim", [3, 6, 9])
def test_vim_equals_pytorch_ood(data, pood, dim):
    det = _fit("vim", data, dim=dim)
    ref = pood.ViM(encoder=None, d=dim, w=data["lin"].weight, b=data["lin"].bias)
    ref.fit_features(_t(data["train"]["features"]).float(), torch.as_tensor(data["train"]["labels"]))
    assert det.alpha_ == pytest.approx(ref.alpha, rel=1e-4)
    for part in ("test", "ood"):
        theirs = -ref.predict_features(_t(data[part]["features"]).float()).numpy()  # float32 throughout
        ours = _score(det, data[part])
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(ours).max())


def test_vim_origin_and_residual_space(data):
    det = _fit("vim", data)
    w, b = data["head"]["head_weight"], data["head"]["head_bias"]
    np.testing.assert_allclose(w @ det.origin_ + b, 0.0, atol=1e-10)  # u = −W⁺b: the logits vanish there
    assert det.dim_ == D // 2 and det.null_basis_.shape == (D, D - D // 2)
    # the residual space holds the *least* ID variance: projecting the centred training set on it
    # leaves less than on any other subspace of that size, e.g. the complement
    c = data["train"]["features"] - det.origin_
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(D, D - D // 2)))
    assert (np.linalg.norm(c @ det.null_basis_, axis=1) ** 2).mean() < (np.linalg.norm(c @ q, axis=1) ** 2).mean()
    assert det.alpha_ == pytest.approx(data["train"]["logits"].max(1).mean() / det.residual_norm(data["train"]["features"]).mean())


def test_vim_variance_criterion_hand_worked():
    """Head with b = 0, so u = 0; training rows (3, 0, 0), (0, 1, 0), (0, 0, 0.1): second-moment
    eigenvalues 9, 1, 0.01 (÷3) hold 0.8991, 0.9990, 1 of the trace.  variance 0.99 → dim 2, the
    residual space is e3: h = (1, 1, 2) has residual norm 2; 0.8 → dim 1, residual (1, 2)."""
    h = np.diag([3.0, 1.0, 0.1])
    w, b = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), np.zeros(2)
    fit = dict(features=h, logits=h @ w.T, head_weight=w, head_bias=b)
    two = make_detector("vim", {"variance": 0.99}).fit(**fit)
    one = make_detector("vim", {"variance": 0.8}).fit(**fit)
    assert (two.dim_, one.dim_) == (2, 1)
    x = np.array([[1.0, 1.0, 2.0]])
    np.testing.assert_allclose(two.residual_norm(x), [2.0])
    np.testing.assert_allclose(one.residual_norm(x), [math.sqrt(5.0)])
    # α = mean max z / mean residual: max z = 3, 1, 0.1 and residuals 0, 0, 0.1 (dim 2)
    assert two.alpha_ == pytest.approx((3 + 1 + 0.1) / 0.1)
    assert make_detector("vim", {"variance": 0.9999999}).fit(**fit).dim_ == 2  # never the whole space


# --------------------------------------------------------------------------------------- GEN (§6)

def test_gen_hand_worked():
    """p = (0.5, 0.25, 0.25), γ = 1: Σ p(1 − p) = 0.25 + 0.1875 + 0.1875; top-2 drops one 0.25 term."""
    z = np.log([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(make_detector("gen", {"gamma": 1, "top_m": 3}).score(logits=z), [-0.625])
    np.testing.assert_allclose(make_detector("gen", {"gamma": 1, "top_m": 2}).score(logits=z), [-0.4375])
    g = 0.5  # γ = 0.5: Σ sqrt(p(1 − p))
    np.testing.assert_allclose(make_detector("gen", {"gamma": g}).score(logits=z),
                               [-(math.sqrt(0.25) + 2 * math.sqrt(0.1875))])


@pytest.mark.parametrize("gamma, top_m", [(0.1, 100), (0.1, 3), (2.0, 2)])
def test_gen_equals_pytorch_ood(data, pood, gamma, top_m):
    for part in ("test", "ood"):
        z = data[part]["logits"]
        assert torch.softmax(_t(z), 1).min() > 1e-7  # pytorch-ood clamps below that
        theirs = pood.GEN.score(_t(z), gamma=gamma, M=top_m).numpy() * min(top_m, C)  # theirs: the mean
        np.testing.assert_allclose(make_detector("gen", {"gamma": gamma, "top_m": top_m}).score(logits=z),
                                   -theirs, rtol=1e-10)


# --------------------------------------------------------------------------------------- KLM (§7)

def test_klm_hand_worked():
    """Templates (0.9, 0.1) and (0.2, 0.8); p = (0.5, 0.5) is nearer the second:
    KL = 0.5 ln(0.5/0.2) + 0.5 ln(0.5/0.8)."""
    train = np.log([[0.9, 0.1], [0.2, 0.8]])
    det = make_detector("klm").fit(logits=train)
    np.testing.assert_allclose(det.templates_, [[0.9, 0.1], [0.2, 0.8]])
    kl0 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl1 = 0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.8)
    assert kl1 < kl0
    np.testing.assert_allclose(det.score(logits=np.zeros((1, 2))), [-kl1], rtol=1e-12)


def test_klm_equals_pytorch_ood(data, pood):
    det = _fit("klm", data)
    ref = pood.KLMatching(model=None).fit_logits(_t(data["train"]["logits"]))
    for part in ("test", "ood"):
        theirs = ref.predict_logits(_t(data[part]["logits"])).numpy()
        np.testing.assert_allclose(_score(det, data[part]), -theirs, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------------------- RMDS (§8)

def test_rmds_equals_sklearn_covariances(data):
    """OpenOOD's construction: scikit-learn's EmpiricalCovariance for the class (centred per class)
    and the background Gaussian, score −min_k (MD_k − MD_0)."""
    from sklearn.covariance import EmpiricalCovariance

    tr = data["train"]
    h, y = tr["features"], tr["labels"]
    mu = np.stack([h[y == c].mean(0) for c in range(C)])
    cls = EmpiricalCovariance(assume_centered=True).fit(h - mu[y])
    bg = EmpiricalCovariance().fit(h)
    det = _fit("rmds", data)
    for part in ("test", "ood"):
        x = data[part]["features"]
        md = np.stack([cls.mahalanobis(x - mu[c]) for c in range(C)], 1)
        np.testing.assert_allclose(_score(det, data[part]), -(md - bg.mahalanobis(x)[:, None]).min(1), rtol=1e-8)


def test_rmds_equals_pytorch_ood_up_to_its_scale(data, pood):
    """pytorch-ood divides by neither covariance's N (scatter matrices + 1e-6 I): its distances are
    ours / N, so its outlier score is −(ours)/N (same ranking)."""
    det = _fit("rmds", data)
    tr = data["train"]
    ref = pood.RMD(encoder=None).fit_features(_t(tr["features"]).float(), torch.as_tensor(tr["labels"]))
    for part in ("test", "ood"):
        theirs = ref.predict_features(_t(data[part]["features"]).float()).numpy()
        ours = _score(det, data[part])
        np.testing.assert_allclose(ours, -len(tr["features"]) * theirs, rtol=2e-3, atol=2e-3 * np.abs(ours).max())


# --------------------------------------------------------------------------------------- SHE (§9)

def test_she_hand_worked():
    """Class 0's correctly classified training features (1, 0) and (3, 2) average to (2, 1); the
    misclassified (9, 9) is left out.  h = (1, 1) predicted 0 scores ⟨h, (2, 1)⟩ = 3."""
    h = np.array([[1.0, 0.0], [3.0, 2.0], [9.0, 9.0], [0.0, 4.0]])
    z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    det = make_detector("she").fit(features=h, logits=z, labels=np.array([0, 0, 0, 1]))
    np.testing.assert_allclose(det.patterns_, [[2.0, 1.0], [0.0, 4.0]])
    np.testing.assert_allclose(det.score(features=np.array([[1.0, 1.0], [1.0, 1.0]]),
                                         logits=np.array([[2.0, 0.0], [0.0, 2.0]])), [3.0, 4.0])


def test_she_equals_pytorch_ood(data, pood):
    det = _fit("she", data)
    ref = pood.SHE(encoder=None, head=data["lin"])
    ref.fit_features(_t(data["train"]["features"]), torch.as_tensor(data["train"]["labels"]))
    for part in ("test", "ood"):
        with torch.no_grad():
            theirs = ref.predict_features(_t(data[part]["features"])).numpy()
        np.testing.assert_allclose(_score(det, data[part]), -theirs, rtol=1e-10)


# ---------------------------------------------------------------------------------- GradOrth (§10)

def test_gradorth_hand_worked():
    """Training rows (3, 0), (4, 0), (0, 1): energies 25 and 1 along e1 and e2; threshold 0.95 keeps
    e1 alone (25/26 = 0.96), 0.97 both.  z = (ln 3, 0): p − u = (1/4, −1/4), ‖·‖ = √2/4; h = (1, 2)
    projects to ‖(1)‖ = 1 on e1, to √5 on both."""
    train = np.array([[3.0, 0.0], [4.0, 0.0], [0.0, 1.0]])
    one = make_detector("gradorth", {"threshold": 0.95}).fit(features=train)
    both = make_detector("gradorth", {"threshold": 0.97}).fit(features=train)
    assert one.rank_ == 1 and both.rank_ == 2
    x = {"features": np.array([[1.0, 2.0]]), "logits": np.array([[math.log(3), 0.0]])}
    np.testing.assert_allclose(one.score(**x), [math.sqrt(2) / 4])
    np.testing.assert_allclose(both.score(**x), [math.sqrt(2) / 4 * math.sqrt(5)])


def test_gradorth_equals_projected_autograd_gradient(data):
    """‖G M Mᵀ‖_F with G = ∂KL(u ‖ softmax(W h + b))/∂W from autograd through the real nn.Linear and
    M from numpy's SVD of the training feature matrix (energy criterion worked out here)."""
    lin = data["lin"]
    _, s, vt = np.linalg.svd(data["train"]["features"], full_matrices=False)
    k = int(np.argmax(np.cumsum(s**2) / (s**2).sum() >= 0.9)) + 1
    m = vt[:k].T
    det = _fit("gradorth", data, threshold=0.9)
    assert det.rank_ == k
    u = torch.full((1, C), 1.0 / C, dtype=torch.float64)
    for part in ("test", "ood"):
        x = data[part]
        ref = []
        for h in x["features"][:15]:
            lin.zero_grad()
            loss = torch.nn.functional.kl_div(torch.log_softmax(lin(_t(h)[None]), 1), u, reduction="sum")
            (g,) = torch.autograd.grad(loss, lin.weight)
            ref.append(np.linalg.norm(g.numpy() @ m @ m.T))
        np.testing.assert_allclose(_score(det, x)[:15], ref, rtol=1e-9)


# -------------------------------------------------------------------------------------- GAIA (§11)

def test_gaia_detector_hand_worked():
    x = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]])
    for variant in ("a", "z"):
        det = make_detector("gaia", {"variant": variant})
        assert det.requires == (f"gaia_{variant}",)
        np.testing.assert_allclose(det.score(**{f"gaia_{variant}": x}), [-0.25, -0.5, 0.0])
    with pytest.raises(ValueError, match="gaia_z"):
        make_detector("gaia", {"variant": "z"}).score(gaia_a=x)


# ------------------------------------------------------------------ shared: store, direction, params

@pytest.mark.parametrize("method", NEW)
def test_round_trip_gives_identical_scores(data, method, tmp_path):
    det = _fit(method, data)
    save_detector(det, tmp_path / "det.npz", stores=["train.zarr"])
    again = load_detector(tmp_path / "det.npz")
    assert type(again) is type(det) and again.get_params() == det.get_params()
    assert again.requires == det.requires
    for part in ("test", "ood"):
        np.testing.assert_array_equal(_score(again, data[part]), _score(det, data[part]))


@pytest.mark.parametrize("method, params", [(m, {}) for m in NEW] + [
    ("ash", {"variant": "b", "percentile": 65}), ("ash", {"variant": "p"}), ("gaia", {"variant": "z"}),
])
def test_id_scores_above_obvious_ood(data, method, params):
    det = _fit(method, data, **params)
    s_id, s_ood = _score(det, data["test"]), _score(det, data["ood"])
    assert s_id.dtype == np.float64 and np.isfinite(s_id).all() and np.isfinite(s_ood).all()
    assert np.median(s_id) > np.median(s_ood), f"{method}: ID median {np.median(s_id)} ≤ OOD {np.median(s_ood)}"
    from grood.evaluation.metrics import auroc

    assert auroc(s_id, s_ood) > 0.8, method


def test_every_new_method_is_registered_with_a_grid():
    for m in NEW:
        assert m in METHODS
        grid = METHODS[m].sweep_grid
        assert isinstance(grid, dict) and set(grid) <= set(METHODS[m].param_defaults()), m
        assert all(isinstance(v, list) and v for v in grid.values()), m
    assert METHODS["gradorth"].reconstruction and not METHODS["vim"].reconstruction
    assert not any(METHODS[m].uses_ood_data or METHODS[m].needs_network for m in NEW)


@pytest.mark.parametrize("method, params, match", [
    ("react", {"percentile": 100}, "react percentile"), ("react", {"fit_rows": 0}, "react fit_rows"),
    ("ash", {"variant": "x"}, "ash variant"), ("ash", {"percentile": -1}, "ash percentile"),
    ("scale", {"percentile": 100.0}, "scale percentile"), ("dice", {"sparsity": 101}, "dice sparsity"),
    ("vim", {"dim": -1}, "vim dim"), ("vim", {"variance": 1.0}, "vim variance"), ("gen", {"gamma": 0}, "gen gamma"), ("gen", {"top_m": 0}, "gen top_m"),
    ("gradorth", {"threshold": 0}, "gradorth threshold"), ("gradorth", {"threshold": 1.5}, "gradorth threshold"),
    ("gaia", {"variant": "b"}, "gaia variant"),
])
def test_bad_values_are_named(method, params, match):
    with pytest.raises(ValueError, match=match):
        make_detector(method, params)
    assert check_detector(method, params, "detectors.x")


def test_bad_values_found_at_fit_are_named(data):
    with pytest.raises(ValueError, match="vim dim: 12 .* 1 ≤ dim < 12"):
        _fit("vim", data, dim=D)
    with pytest.raises(ValueError, match=r"ash percentile: 99 keeps no activation .* below 95\.8"):
        _fit("ash", data, percentile=99)
    with pytest.raises(ValueError, match="scale percentile"):
        _fit("scale", data, percentile=99)
    assert check_detector("ash", {"variant": 3}, "detectors.a") == [
        "detectors.a.variant: must be a string (default 's'), got 3"]


@pytest.mark.parametrize("method", ["react", "ash", "scale", "dice", "vim"])
def test_a_head_that_does_not_make_the_logits_is_refused(data, method):
    train = dict(data["train"])
    train["head_weight"] = train["head_weight"][::-1].copy()  # classes swapped: another checkpoint's head
    det = make_detector(method)
    with pytest.raises(ValueError, match="do not reproduce the stored logits"):
        det.fit(**{k: train[k] for k in det.fit_requires})
    train = dict(data["train"], head_bias=np.zeros(C + 1))
    with pytest.raises(ValueError, match=r"head_bias \(C,\)"):
        det.fit(**{k: train[k] for k in det.fit_requires})


# ----------------------------------------------------------- GAIA's statistics (grood.net.gaia, §11)

@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks, many small calls: on a shared 2-core machine intra-op threads only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _nets():
    from grood.net.models import cnn_bn_gap, lenet5

    torch.manual_seed(0)
    return {"lenet5": lenet5(1, 4).eval(), "cnn_bn_gap": cnn_bn_gap(1, 4, width=4).eval()}


def _gaia_reference(model, x, layers):
    """One sample at a time, one fresh forward pass per objective, gradients read with
    ``retain_grad`` + ``backward`` (not grood.net.gaia's hooks and ``autograd.grad``)."""
    stages = dict(model.stages.named_modules())
    rows_a, rows_z = [], []
    for xi in x:
        def run(objective):
            maps = {}

            def keep(name):
                def hook(module, inputs, output):
                    output.retain_grad()
                    maps[name] = output
                return hook

            handles = [stages[n].register_forward_hook(keep(n)) for n in set(layers["z"]) | set(layers["a"])]
            h = model.features(xi[None])
            h.retain_grad()
            z = model.fc(h)
            for handle in handles:
                handle.remove()
            model.zero_grad()
            objective(h, z).backward()
            return maps, h, z

        maps, _, _ = run(lambda h, z: z[0].max())
        rows_z.append(np.concatenate([(maps[n].grad[0] != 0).double().flatten(1).mean(1).numpy() for n in layers["z"]]))
        _, h, z = run(lambda h, z: torch.log_softmax(z, 1).sum())
        o = h.grad[0].abs().mean().sqrt().item()
        # the output component in closed form: ∂Σ_c log p_c/∂h = Wᵀ(1 − C p)
        p = torch.softmax(z[0], 0).detach()
        w = model.fc.weight.detach()
        assert o == pytest.approx((w.T @ (1 - len(p) * p)).abs().mean().sqrt().item(), rel=1e-5)
        maps, _, _ = run(lambda h, z: h.sum())
        rows_a.append(np.concatenate([maps[n].grad[0].flatten(1).mean(1).numpy() for n in layers["a"]]) / o)
    return np.stack(rows_a), np.stack(rows_z)


def test_gaia_layers_are_the_authors_places():
    from grood.net.gaia import gaia_layers

    nets = _nets()
    assert gaia_layers(nets["lenet5"]) == {"z": ["layer1.conv", "layer2.conv", "layer3.conv"],
                                           "a": ["layer2.conv", "layer3.conv"]}
    assert gaia_layers(nets["cnn_bn_gap"]) == {"z": ["stem.bn", "layer1.bn", "layer2.bn", "layer3.bn"],
                                               "a": ["layer2.bn", "layer3.bn"]}


@pytest.mark.parametrize("arch", ["lenet5", "cnn_bn_gap"])
def test_gaia_statistics_equal_a_per_sample_autograd_loop(arch):
    from grood.net.gaia import gaia_layers, gaia_statistics

    model = _nets()[arch]
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    x[3] = 0.0  # a blank image: many exact zeros
    layers = gaia_layers(model)
    out = gaia_statistics(model, x)
    ref_a, ref_z = _gaia_reference(model, x, layers)
    assert out["gaia_z"].shape == ref_z.shape and out["gaia_a"].shape == ref_a.shape
    np.testing.assert_allclose(out["gaia_z"], ref_z, atol=1e-6)  # shares of non-zero entries: exact
    np.testing.assert_allclose(out["gaia_a"], ref_a, rtol=1e-4, atol=1e-6 * np.abs(ref_a).max())
    assert 0 < out["gaia_z"].mean() < 1 and np.abs(out["gaia_a"]).max() > 0


def test_gaia_reads_gradients_before_in_place_ops():
    """A ReLU(inplace=True) after the hooked batch norm (torchvision's blocks) must not zero the
    gradient GAIA reads: the same net with out-of-place ReLUs gives the same statistics."""
    from collections import OrderedDict

    from grood.net.gaia import gaia_statistics
    from grood.net.models import StagedNet

    def net(inplace):
        torch.manual_seed(3)
        block = lambda cin, cout: torch.nn.Sequential(OrderedDict(  # noqa: E731
            conv=torch.nn.Conv2d(cin, cout, 3, padding=1), bn=torch.nn.BatchNorm2d(cout),
            relu=torch.nn.ReLU(inplace=inplace), pool=torch.nn.MaxPool2d(2)))
        stages = OrderedDict(a=block(1, 3), b=block(3, 4), pool=torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1),
                                                                                  torch.nn.Flatten()))
        return StagedNet(stages, torch.nn.Linear(4, 3)).eval()

    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    ref, got = gaia_statistics(net(False), x), gaia_statistics(net(True), x)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])


def test_gaia_batches_split_freely_and_need_eval_mode():
    from grood.net.gaia import gaia_batches, gaia_statistics
    from grood.net.preprocess import spec_from_training, to_tensor

    model = _nets()["lenet5"]
    images = np.random.default_rng(4).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    spec = spec_from_training(images)
    whole = gaia_statistics(model, to_tensor(images, spec))
    got = gaia_batches(model, images, spec, "cpu", batch_size=4, with_outputs=True)
    for k in whole:
        np.testing.assert_allclose(got[k], whole[k], rtol=1e-5, atol=1e-7)
    # the same forward pass gives the features stage's arrays
    from grood.net.forward import forward_batches

    ref = forward_batches(model, images, spec, torch.device("cpu"), batch_size=4)
    for k in ("features", "logits"):
        np.testing.assert_array_equal(got[k], ref[k])
    with pytest.raises(ValueError, match="eval mode"):
        gaia_statistics(model.train(), to_tensor(images, spec))
    model.eval()


def test_she_falls_back_to_the_class_mean_without_a_correct_sample():
    """Class 1's only training sample (0, 4) is classified as 0: its pattern is its plain mean."""
    h = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0]])
    z = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    det = make_detector("she").fit(features=h, logits=z, labels=np.array([0, 0, 1]))
    np.testing.assert_allclose(det.patterns_, [[2.0, 1.0], [0.0, 4.0]])
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have no training sample"):
        make_detector("she").fit(features=h, logits=np.zeros((3, 3)), labels=np.array([0, 0, 1]))


def test_gaia_hand_worked_on_a_one_conv_network():
    """conv 1×1 (two channels, weights 1, bias 0) → ReLU → average pool → head W = [[1, 0], [1, 1]],
    b = (2, 0), on one 2×2 image (1, −1; 2, −3): both channels are (1, 0; 2, 0) after the ReLU, so
    h = (0.75, 0.75), z = (2.75, 1.5), the max logit is class 0.
    GAIA-Z: ∂z_0/∂conv reaches channel 0 where the ReLU is on (2 of 4 positions) and never channel 1
    (W_01 = 0): shares (0.5, 0).  GAIA-A: ∂Σh/∂conv = 1/4 on the active positions, channel means
    1/8; o = sqrt(mean |Wᵀ(1 − 2p)|) = sqrt((2 p_0 − 1)/2)."""
    from collections import OrderedDict

    from grood.net.gaia import gaia_layers, gaia_statistics
    from grood.net.models import StagedNet

    conv = torch.nn.Conv2d(1, 2, 1)
    fc = torch.nn.Linear(2, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        fc.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        fc.bias.copy_(torch.tensor([2.0, 0.0]))
    net = StagedNet(OrderedDict(block=torch.nn.Sequential(OrderedDict(conv=conv, relu=torch.nn.ReLU())),
                                pool=torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())),
                    fc).eval()
    assert gaia_layers(net) == {"z": ["block.conv"], "a": ["block.conv"]}
    out = gaia_statistics(net, torch.tensor([[[[1.0, -1.0], [2.0, -3.0]]]]))
    np.testing.assert_allclose(out["gaia_z"], [[0.5, 0.0]])
    p0 = 1.0 / (1.0 + math.exp(-1.25))
    np.testing.assert_allclose(out["gaia_a"], [[0.125 / math.sqrt((2 * p0 - 1) / 2)] * 2], rtol=1e-6)
