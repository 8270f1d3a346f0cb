"""Every detector against an independent computation (autograd, a direct formula or scikit-learn),
plus the contract all detectors share: NaN refused, bad parameters named (storing them exactly,
without pickle: tests/test_detector_store.py)."""

import numpy as np
import pytest
import torch
from sklearn.covariance import EmpiricalCovariance
from sklearn.neighbors import NearestNeighbors

from grood.method import prototypes as pr
from grood.detectors import METHODS, make_detector
from grood.detectors.base import softmax
from grood.method.gradients import WRT, grood_gradients, ncp_softmax
from grood.method.vocab import GAIA_ARRAYS, HEAD_ARRAYS

C, D = 5, 12
ARRAY_NAMES = {"features", "logits", "labels", "gradients", "proto_dist", "pi_ood", *HEAD_ARRAYS, *GAIA_ARRAYS}


# ------------------------------------------------------------------------------------------ fixtures

def _linear(seed=0, c=C, d=D):
    torch.manual_seed(seed)
    return torch.nn.Linear(d, c).double()


def _arrays(rng, n, lin, means, P, p_ood, spread=0.7):
    y = rng.integers(0, len(means), n)
    h = np.maximum(means[y] + rng.normal(scale=spread, size=(n, means.shape[1])), 0.0)  # ReLU-like
    with torch.no_grad():
        z = lin(torch.as_tensor(h)).numpy()
    dist, pi = ncp_softmax(h, P, p_ood)
    return {"features": h, "logits": z, "labels": y,
            "gradients": grood_gradients(h, z, P, p_ood, "ood").astype(np.float64),
            "proto_dist": dist[:, -1], "pi_ood": pi[:, -1],
            "gaia_a": rng.normal(size=(n, 7)), "gaia_z": rng.random((n, 9)),
            # the head is not a row array; detectors read it only when fitted
            "head_weight": lin.weight.detach().numpy().copy(), "head_bias": lin.bias.detach().numpy().copy()}


@pytest.fixture(scope="module")
def data():
    """ID train/test drawn around class means; OOD far from them; z = W h + b of a real nn.Linear."""
    rng = np.random.default_rng(0)
    means = rng.uniform(0.5, 3.0, size=(C, D)) * (rng.random((C, D)) < 0.6)
    lin = _linear()
    train = _arrays(rng, 400, lin, means, means, means.mean(0))
    P = pr.class_means(train["features"], train["labels"], C)
    p_ood = P.mean(0) * 0.3
    train = _arrays(np.random.default_rng(1), 400, lin, means, P, p_ood)
    test = _arrays(np.random.default_rng(2), 60, lin, means, P, p_ood)
    ood = _arrays(np.random.default_rng(3), 60, lin, np.full((1, D), 1.0), P, p_ood, spread=1.5)
    return {"train": train, "test": test, "ood": ood, "lin": lin, "P": P, "p_ood": p_ood}


def _fit(method, data, **params):
    det = make_detector(method, params)
    return det.fit(**{k: data["train"][k] for k in det.fit_requires})


ARRAY_METHODS = sorted(m for m, cls in METHODS.items() if not cls.needs_network)
# MSP/MaxLogit/Energy pass NaN through to their scores, which the score stage then refuses
CHECKED_METHODS = [m for m in ARRAY_METHODS if m not in ("msp", "maxlogit", "energy")]


# ------------------------------------------------------------------------------ the shared contract

def test_registry_names_known_arrays():
    for name, cls in METHODS.items():
        assert set(cls.requires) | set(cls.fit_requires) <= ARRAY_NAMES, name
        assert cls.needs_network or cls.requires, f"{name} reads nothing"


@pytest.mark.parametrize("method", ARRAY_METHODS)
def test_scores_are_finite_float64_one_per_sample(method, data):
    det = _fit(method, data, **({"k": 5} if method == "knn" else {}))
    s = det.score(**{k: data["test"][k] for k in det.requires})
    assert s.dtype == np.float64 and s.shape == (60,) and np.isfinite(s).all()


@pytest.mark.parametrize("method", CHECKED_METHODS)
def test_nan_inputs_are_refused(method, data):
    det = _fit(method, data, **({"k": 5} if method == "knn" else {}))
    for name in det.requires:
        bad = {k: data["test"][k].astype(np.float64).copy() for k in det.requires}
        bad[name].flat[3] = np.nan
        with pytest.raises(FloatingPointError, match="non-finite|NaN"):
            det.score(**bad)
    if det.fit_requires and "features" in det.fit_requires:
        bad = {k: data["train"][k].astype(np.float64).copy() for k in det.fit_requires}
        bad["features"][0, 0] = np.inf
        with pytest.raises(FloatingPointError):
            make_detector(method, {"k": 5} if method == "knn" else {}).fit(**bad)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_unknown_parameters_are_named(method):
    with pytest.raises(ValueError, match=f"{method}.*bogus"):
        make_detector(method, {"bogus": 1})


@pytest.mark.parametrize("method, params, match", [
    ("knn", {"k": 0}, "k"), ("knn", {"index": {"kind": "hnsw"}}, "index kind"), ("mahalanobis", {"rcond": -1}, "rcond"),
    ("gradnorm", {"temperature": 0}, "temperature"), ("odin", {"epsilon": -0.1}, "epsilon"),
    ("odin", {"temperature": 0}, "temperature"), ("grood_gnorm", {"wrt": "weights"}, "wrt"),
    ("grood_proto_dist", {"prototype": "moon"}, "prototype"),
    ("grood", {"k": 0}, "grood k"), ("grood", {"index": {"kind": "hnsw"}}, "index kind"),
    ("grood", {"index": "ivf_flat"}, "one mapping"),
    ("grood", {"metric": "ip"}, "grood metric"),
])
def test_bad_values_are_named(method, params, match):
    with pytest.raises(ValueError, match=match):
        make_detector(method, params)


def test_gradient_store_detectors_share_one_vocabulary():
    """GROOD and its ablations accept exactly grood.method.vocab's sources and wrt values, and name their
    gradient store as the gradients stage does."""
    from grood.method import vocab

    for method in ("grood", "grood_proto_dist", "grood_gnorm"):
        for source in vocab.PROTOTYPE_SOURCES:
            for wrt in vocab.WRT:
                det = make_detector(method, {"prototype": source, "wrt": wrt, "temperature": 0.5})
                assert det.gradient_space == f"{source}_{wrt}_T0.5"
        with pytest.raises(ValueError, match="prototype: unknown OOD-prototype source 'moon'"):
            make_detector(method, {"prototype": "moon"})
        with pytest.raises(ValueError, match="wrt: unknown gradient target 'weights'"):
            make_detector(method, {"wrt": "weights"})
        with pytest.raises(ValueError, match="temperature: must be > 0"):
            make_detector(method, {"temperature": 0.0})
    assert WRT is vocab.WRT


def test_flags():
    for m in ("exgrad_l1", "exgrad_fro", "feature_norm", "output_confidence", "exgrad_confidence"):
        assert METHODS[m].reconstruction
    for m in ("mahalanobis", "knn", "gradnorm", "odin", "grood_proto_dist", "grood_gnorm"):
        assert not METHODS[m].reconstruction and not METHODS[m].uses_ood_data
    assert METHODS["odin"].needs_network


# ------------------------------------------------------------------------------------- Mahalanobis

def _sklearn_mahalanobis(train, x):
    y = train["labels"]
    mu = np.stack([train["features"][y == c].mean(0) for c in range(C)])
    ec = EmpiricalCovariance(assume_centered=True).fit(train["features"] - mu[y])
    return -np.min([ec.mahalanobis(x - mu[c]) for c in range(C)], axis=0), ec


def test_mahalanobis_equals_sklearn(data):
    det = _fit("mahalanobis", data)
    for part in ("test", "ood"):
        ref, ec = _sklearn_mahalanobis(data["train"], data[part]["features"])
        np.testing.assert_allclose(det.score(features=data[part]["features"]), ref, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(det.covariance_, ec.covariance_, atol=1e-12)


def test_mahalanobis_singular_covariance_uses_the_pseudo_inverse(data):
    """A dead (constant-zero) feature, as ReLU nets have: Σ is singular, Σ⁺ is pinvh's."""
    train = {k: v.copy() for k, v in data["train"].items()}
    train["features"][:, 4] = 0.0
    det = make_detector("mahalanobis").fit(features=train["features"], labels=train["labels"])
    assert det.rank_ == D - 1
    x = data["test"]["features"].copy()
    x[:, 4] = 0.0
    ref, ec = _sklearn_mahalanobis(train, x)
    np.testing.assert_allclose(det.precision_, ec.precision_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(det.score(features=x), ref, rtol=1e-7, atol=1e-7)


def test_mahalanobis_direct_formula(data):
    det = _fit("mahalanobis", data)
    h = data["ood"]["features"][:5]
    prec = np.linalg.pinv(det.covariance_)
    direct = [-min((v - m) @ prec @ (v - m) for m in det.means_) for v in h]
    np.testing.assert_allclose(det.score(features=h), direct, rtol=1e-8)


# --------------------------------------------------------------------------------------------- kNN

@pytest.mark.parametrize("k", [1, 5, 50])
def test_knn_equals_sklearn_on_normalised_features(data, k):
    det = _fit("knn", data, k=k)
    normed = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    nn_ref = NearestNeighbors(n_neighbors=k).fit(normed(data["train"]["features"]))
    for part in ("test", "ood"):
        dist, _ = nn_ref.kneighbors(normed(data[part]["features"]))
        np.testing.assert_allclose(det.score(features=data[part]["features"]), -dist[:, -1] ** 2, atol=2e-5)


def test_knn_k_larger_than_training_set_is_an_error(data):
    with pytest.raises(ValueError, match="k=999"):
        make_detector("knn", {"k": 999}).fit(features=data["train"]["features"][:100])


def test_feature_detectors_rank_near_points_as_id(data):
    for method in ("mahalanobis", "knn"):
        det = _fit(method, data, **({"k": 5} if method == "knn" else {}))
        s_id, s_ood = (det.score(features=data[part]["features"]) for part in ("test", "ood"))
        assert s_id.mean() > s_ood.mean()


# ---------------------------------------------------------------------------------------- GradNorm

def _weight_grad(lin, h, loss_fn):
    """∂loss/∂W (bias excluded) for one sample through the real nn.Linear."""
    lin.zero_grad()
    z = lin(torch.as_tensor(h)[None])
    (g,) = torch.autograd.grad(loss_fn(z), lin.weight)
    return g.numpy()


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_gradnorm_equals_autograd(data, temperature):
    lin = data["lin"]
    x = data["ood"]
    det = make_detector("gradnorm", {"temperature": temperature})
    scores = det.score(features=x["features"], logits=x["logits"])
    u = torch.full((1, C), 1.0 / C, dtype=torch.float64)

    def kl(z):  # KL(u ‖ softmax(z/T)), reduction over the one sample
        return torch.nn.functional.kl_div(torch.log_softmax(z / temperature, 1), u, reduction="sum")

    ref = [np.abs(_weight_grad(lin, h, kl)).sum() for h in x["features"][:20]]
    np.testing.assert_allclose(scores[:20], ref, rtol=1e-9)
    assert min(ref) > 1e-6


def test_gradnorm_official_all_ones_target_is_c_times(data):
    lin, x = data["lin"], data["test"]

    def official(z):  # GradNorm's code: sum(-targets * logsoftmax(z/T)), targets all ones
        return torch.sum(-torch.log_softmax(z, 1))

    ref = [np.abs(_weight_grad(lin, h, official)).sum() for h in x["features"][:10]]
    ours = make_detector("gradnorm").score(features=x["features"][:10], logits=x["logits"][:10])
    np.testing.assert_allclose(ref, C * ours, rtol=1e-9)


# ------------------------------------------------------------------------------ ExGrad family (§4)

def _per_label_grads(lin, h):
    """G_y = ∂CE(z, y)/∂W for every label y: the exact expectation enumerates all C of them."""
    ce = torch.nn.functional.cross_entropy
    return np.stack([_weight_grad(lin, h, lambda z, y=y: ce(z, torch.tensor([y]))) for y in range(C)])


def test_exgrad_family_equals_exact_expectation_of_per_label_gradients(data):
    lin = data["lin"]
    x = {k: np.concatenate([data["test"][k][:8], data["ood"][k][:8]]) for k in ("features", "logits")}
    p = softmax(x["logits"])
    methods = ("exgrad_l1", "exgrad_fro", "feature_norm", "output_confidence", "exgrad_confidence", "gradnorm")
    scores = {m: make_detector(m).score(**x) for m in methods}
    for i, h in enumerate(x["features"]):
        G = _per_label_grads(lin, h)  # (C, C, D)
        l1 = np.abs(G).sum((1, 2))
        fro2 = (G**2).sum((1, 2))
        np.testing.assert_allclose(-scores["exgrad_l1"][i], p[i] @ l1, rtol=1e-9)
        np.testing.assert_allclose(-scores["exgrad_fro"][i], p[i] @ fro2, rtol=1e-9)
        # feature factor: every per-label gradient is rank 1, ‖G_y‖₁ = ‖h‖₁ ‖p − e_y‖₁
        h1 = l1 / np.abs(p[i] - np.eye(C)).sum(1)  # the same ‖h‖₁ from every label
        np.testing.assert_allclose(h1, scores["feature_norm"][i], rtol=1e-9)
        # output factors: GradNorm's gradient is the uniform mean of G_y; ExGrad's is E_{y~p}‖p − e_y‖²
        g_u = G.mean(0)
        conf = np.abs(g_u).sum() / np.abs(h).sum()
        np.testing.assert_allclose(conf, scores["output_confidence"][i], rtol=1e-9)
        np.testing.assert_allclose(np.abs(g_u).sum(), scores["gradnorm"][i], rtol=1e-9)
        np.testing.assert_allclose(-(p[i] @ fro2) / (h @ h), scores["exgrad_confidence"][i], rtol=1e-9)


# ------------------------------------------------------------------------------ GROOD ablations

def test_grood_proto_dist_is_distance_to_p_ood(data):
    x = data["ood"]
    direct = np.linalg.norm(x["features"] - data["p_ood"], axis=1)
    s = make_detector("grood_proto_dist").score(proto_dist=x["proto_dist"])
    np.testing.assert_allclose(s, direct, rtol=1e-9)


@pytest.mark.parametrize("wrt", WRT)
def test_grood_gnorm_is_minus_l1_of_the_gradient(data, wrt):
    x = data["test"]
    g = grood_gradients(x["features"], x["logits"], data["P"], data["p_ood"], wrt)
    s = make_detector("grood_gnorm", {"wrt": wrt}).score(gradients=g)
    np.testing.assert_allclose(s, -np.abs(g.astype(np.float64)).sum(1), rtol=1e-12)
    if wrt == "ood":  # ‖g‖₁ = π_ood ‖unit vector‖₁: grows with the OOD-prototype probability
        unit = (x["features"] - data["p_ood"]) / x["proto_dist"][:, None]
        np.testing.assert_allclose(-s, x["pi_ood"] * np.abs(unit).sum(1), rtol=1e-5)


def test_cosine_grood_is_l2_on_normalised_gradients(data):
    g_tr, g_te = data["train"]["gradients"], data["test"]["gradients"]
    fit = {k: data["train"][k] for k in ("gradients", "logits", "labels")}
    cos = make_detector("grood", {"metric": "cosine", "k": 3}).fit(**fit)
    correct = data["train"]["logits"].argmax(1) == data["train"]["labels"]
    normed = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    dist, _ = NearestNeighbors(n_neighbors=3).fit(normed(g_tr[correct])).kneighbors(normed(g_te))
    np.testing.assert_allclose(cos.score(gradients=g_te), -dist[:, -1] ** 2, atol=2e-5)


# ----------------------------------------------------------------------- prototypes (§1.1–1.2)

def test_class_means_equal_a_loop():
    rng = np.random.default_rng(4)
    v, y = rng.normal(size=(50, 3, 2)), rng.integers(0, 4, 50)
    y[:4] = np.arange(4)
    ref = np.stack([v[y == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(pr.class_means(v, y, 4), ref, rtol=1e-12)
    with pytest.raises(ValueError, match=r"class\(es\) \[4\]"):
        pr.class_means(v, y, 5)


def test_runner_up_is_the_second_largest_logit():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(30, 7))
    np.testing.assert_array_equal(pr.runner_up(z), np.argsort(z, 1)[:, -2])
    np.testing.assert_array_equal(pr.runner_up(np.array([[1.0, 3.0, 3.0, 0.0]])), [2])  # ties: stable order


def test_most_ood_like_mean_keeps_the_highest_energy_samples():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(40, 5)) * 3
    h = rng.normal(size=(40, 8))
    energy = -np.log(np.exp(z).sum(1))
    top = np.argsort(energy)[-10:]
    np.testing.assert_allclose(pr.most_ood_like_mean(h, z, 0.25), h[top].mean(0), rtol=1e-12)
    np.testing.assert_allclose(pr.most_ood_like_mean(h, z, 1.0), h.mean(0), rtol=1e-12)
    with pytest.raises(ValueError, match="keep"):
        pr.most_ood_like_mean(h, z, 0.0)


# --------------------------------------------------------------------------------------------- ODIN

@pytest.fixture(scope="module")
def net():
    from grood.net.models import cnn_bn_gap
    from grood.net.preprocess import spec_from_training

    torch.manual_seed(0)
    model = cnn_bn_gap(1, 4, width=4).eval()  # batch norm in eval mode: samples stay independent
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(24, 28, 28), dtype=np.uint8)
    return model, images, spec_from_training(images)


def test_odin_with_no_perturbation_and_t1_is_msp(net):
    from grood.detectors.odin import odin_scores
    from grood.net.forward import forward_batches

    model, images, spec = net
    logits = forward_batches(model, images, spec, torch.device("cpu"), batch_size=8)["logits"]
    msp = make_detector("msp").score(logits=logits)
    odin = odin_scores(model, images, spec, "cpu", temperature=1.0, epsilon=0.0, batch_size=8)
    np.testing.assert_array_equal(odin, msp)


@pytest.mark.slow  # one autograd call per sample
@pytest.mark.parametrize("scale_by_std", [True, False])
@pytest.mark.parametrize("temperature", [1.0, 1000.0])
def test_odin_equals_per_sample_autograd(net, scale_by_std, temperature):
    from grood.detectors.odin import odin_scores
    from grood.net.preprocess import to_tensor

    model, images, spec = net
    T, eps = temperature, 0.01
    ours = make_detector("odin", {"temperature": T, "epsilon": eps, "batch_size": 5,
                                  "scale_by_std": scale_by_std}).score(model=model, images=images, spec=spec)
    base = odin_scores(model, images, spec, "cpu", T, 0.0)
    ref = []
    for x in to_tensor(images, spec):
        x = x[None].clone().requires_grad_(True)
        log_s = torch.log_softmax(model(x) / T, 1).max()
        (g,) = torch.autograd.grad(log_s, x)
        step = torch.sign(g) / (spec.std[0] if scale_by_std else 1.0)  # x̃ = x − ε sign(−∇ log S)
        with torch.no_grad():
            ref.append(torch.softmax(model(x + eps * step).double() / T, 1).max().item())
    # compare the perturbation's effect: at T=1000 every score is ≈ 1/C and differs in the 5th digit
    np.testing.assert_allclose(ours - base, np.array(ref) - base, rtol=1e-3, atol=1e-10)
    assert np.abs(ours - base).min() > 0  # ε does something to every sample


def test_odin_perturbation_increases_max_softmax(net):
    model, images, spec = net
    base = make_detector("odin", {"epsilon": 0.0}).score(model=model, images=images, spec=spec)
    pert = make_detector("odin", {"epsilon": 0.0014}).score(model=model, images=images, spec=spec)
    assert (pert - base).mean() > 0 and (pert > base).mean() > 0.9


def test_odin_through_the_score_stage(net, tmp_path):
    from grood.detectors.odin import odin_scores
    from grood.pipeline import fit_detector_stage, score_stage
    from grood.storage import save_npz
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint

    model, images, spec = net
    save_checkpoint(tmp_path / "model.pt", TrainResult(model, spec, [0, 1, 2, 3]), TrainConfig(arch="cnn_bn_gap", width=4))
    save_npz(tmp_path / "data.npz", {"x_test": images})
    fit_detector_stage("odin", {"epsilon": 0.002}, [], tmp_path / "odin.npz")
    score_stage(tmp_path / "odin.npz", [], tmp_path / "s.npy", model_pt=tmp_path / "model.pt",
                data_npz=tmp_path / "data.npz", split="test", device="cpu")
    expected = odin_scores(model, images, spec, "cpu", 1000.0, 0.002)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="needs the network"):
        score_stage(tmp_path / "odin.npz", [], tmp_path / "t.npy")
