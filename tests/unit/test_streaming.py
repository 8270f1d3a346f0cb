"""Detectors and the gradient extraction read Zarr stores block by block with the in-memory results:
GROOD and kNN bit for bit, Mahalanobis to float64 rounding (and still equal to scikit-learn)."""

import numpy as np
import pytest
import zarr
from sklearn.covariance import EmpiricalCovariance

from grood.storage import chunks
from grood.detectors import make_detector
from grood.method.gradients import grood_gradients, ncp_softmax
from grood.storage import read_zarr, write_zarr

C, D = 6, 16


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A training and a test part, in memory and as Zarr stores with small, odd chunks."""
    rng = np.random.default_rng(0)
    means = rng.uniform(0, 3, size=(C, D))
    head = rng.normal(size=(D, C))
    tmp = tmp_path_factory.mktemp("stores")
    out = {}
    for name, n in (("train", 1500), ("test", 400)):
        y = rng.integers(0, C, n)
        h = np.maximum(means[y] + rng.normal(scale=0.8, size=(n, D)), 0).astype(np.float32)
        z = (h @ head).astype(np.float32)
        g = grood_gradients(h, z, means, means.mean(0) * 0.3)
        y[:5] = -1  # labels outside the model's classes are skipped by Mahalanobis
        arrays = {"features": h, "logits": z, "labels": y, "gradients": g}
        write_zarr(tmp / f"{name}.zarr", arrays, chunk_rows=97)
        out[name] = arrays
        out[f"{name}_zarr"] = {k: chunks.open_array(tmp / f"{name}.zarr", k) for k in arrays}
    out["head"] = head.astype(np.float32)
    return out


def _fit(method, arrays, **params):
    det = make_detector(method, params)
    return det.fit(**{k: arrays[k] for k in det.fit_requires})


@pytest.mark.parametrize("method, params", [
    ("grood", {}), ("grood", {"k": 3, "metric": "cosine"}), ("knn", {"k": 10}),
    ("grood", {"index": {"kind": "ivf_flat", "nlist": 8, "nprobe": 2}}),
    ("knn", {"k": 5, "index": {"kind": "ivf_pq", "nlist": 8, "m": 4, "nbits": 6}}),
])
def test_index_detectors_fit_and_score_zarr_exactly_as_memory(parts, monkeypatch, method, params):
    monkeypatch.setattr(chunks, "BLOCK_BYTES", 4096)  # many blocks even at this size
    mem = _fit(method, parts["train"], **params)
    disk = _fit(method, parts["train_zarr"], **params)
    for key in ("test", "train"):
        s_mem = mem.score(**{k: parts[key][k] for k in mem.requires})
        s_disk = disk.score(**{k: parts[f"{key}_zarr"][k] for k in disk.requires})
        assert np.array_equal(s_mem, s_disk) and s_disk.dtype == np.float64


def test_grood_indexes_only_correctly_classified_rows(parts):
    det = _fit("grood", parts["train_zarr"])
    tr = parts["train"]
    correct = tr["logits"].argmax(1) == tr["labels"]
    assert det.n_indexed_ == det.index_.ntotal + len(det.index_duplicates_) == correct.sum() < len(correct)
    # a correctly classified training sample is its own nearest neighbour: distance 0
    s = det.score(gradients=tr["gradients"])
    assert np.all(s[correct] == 0.0) and np.all(s[~correct] < 0.0)


def test_grood_index_parameters_fail_before_any_data():
    with pytest.raises(ValueError, match="index kind"):
        make_detector("grood", {"index": {"kind": "ivf"}})
    with pytest.raises(ValueError, match="nbits"):
        make_detector("knn", {"index": {"kind": "ivf_pq", "nbits": 40}})
    with pytest.raises(ValueError, match="grood k"):
        make_detector("grood", {"k": 0})


def test_streaming_mahalanobis_equals_in_memory_and_sklearn(parts, monkeypatch):
    mem = _fit("mahalanobis", parts["train"])
    monkeypatch.setattr(chunks, "BLOCK_BYTES", 8 * D * 64)  # 64-row blocks: 24 of them
    disk = _fit("mahalanobis", parts["train_zarr"])
    np.testing.assert_array_equal(disk.means_, mem.means_)  # np.add.at row by row: same order, same sums
    np.testing.assert_allclose(disk.covariance_, mem.covariance_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(disk.score(features=parts["test_zarr"]["features"]),
                               mem.score(features=parts["test"]["features"]), rtol=1e-9)
    tr = parts["train"]
    known = tr["labels"] >= 0
    h, y = tr["features"][known].astype(np.float64), tr["labels"][known]
    mu = np.stack([h[y == c].mean(0) for c in range(C)])
    ec = EmpiricalCovariance(assume_centered=True).fit(h - mu[y])
    np.testing.assert_allclose(disk.covariance_, ec.covariance_, rtol=1e-10, atol=1e-12)


def test_mahalanobis_refuses_fractional_labels(parts):
    with pytest.raises(ValueError, match="integers"):
        make_detector("mahalanobis").fit(features=parts["train"]["features"][:10],
                                         labels=np.linspace(0, 1, 10))


def test_rows_that_do_not_match_are_named(parts):
    with pytest.raises(ValueError, match="labels has 10 rows"):
        make_detector("grood").fit(gradients=parts["train"]["gradients"], logits=parts["train"]["logits"],
                                   labels=parts["train"]["labels"][:10])


# ------------------------------------------------------------------------------ gradient extraction


def test_streamed_gradient_store_equals_the_whole_array_way(tmp_path, parts):
    from benchmarks.bench_scale import gradients_in_memory
    from grood.method.gradient_store import write_gradient_store

    rng = np.random.default_rng(1)
    P, p_ood = rng.uniform(0, 3, size=(C, D)), rng.uniform(0, 1, D)
    write_zarr(tmp_path / "f.zarr", {k: parts["train"][k] for k in ("features", "logits")}, chunk_rows=64)
    n = write_gradient_store(tmp_path / "f.zarr", P, p_ood, tmp_path / "g.zarr", batch_size=64,
                             attrs={"wrt": "ood"})
    gradients_in_memory(tmp_path / "f.zarr", P, p_ood, tmp_path / "ref.zarr", batch_size=64)
    got, attrs = read_zarr(tmp_path / "g.zarr")
    ref, _ = read_zarr(tmp_path / "ref.zarr")
    assert n == 1500 and attrs["wrt"] == "ood" and set(got) == {"gradients", "proto_dist", "pi_ood"}
    for k in got:
        assert np.array_equal(got[k], ref[k])
    h, z = parts["train"]["features"], parts["train"]["logits"]
    np.testing.assert_allclose(got["gradients"], grood_gradients(h, z, P, p_ood), rtol=1e-6, atol=1e-7)
    dist, pi = ncp_softmax(h, P, p_ood)
    np.testing.assert_allclose(got["pi_ood"], pi[:, -1], rtol=1e-6)


def test_gradient_store_names_a_missing_store(tmp_path):
    from grood.method.gradient_store import write_gradient_store

    with pytest.raises(FileNotFoundError, match="nope.zarr"):
        write_gradient_store(tmp_path / "nope.zarr", np.zeros((2, 3)), np.zeros(3), tmp_path / "g.zarr")


def test_open_arrays_is_lazy_and_feeds_every_detector(parts, tmp_path):
    """The fit_detector and score stages pass lazy arrays (:func:`chunks.open_arrays`): every
    detector that reads only stored arrays fits on whole lazy stores and scores a row window of
    them with the in-memory results (streaming ones read by blocks, the others whole)."""
    from grood.detectors import METHODS

    rng = np.random.default_rng(2)
    extra = {"proto_dist": rng.uniform(0, 2, 1900).astype(np.float32),
             "pi_ood": rng.uniform(0, 1, 1900).astype(np.float32),
             "gaia_a": rng.normal(size=(1900, 5)).astype(np.float32),
             "gaia_z": rng.uniform(0, 1, (1900, 7)).astype(np.float32)}
    mem = {key: {**parts[key], **{k: v[sl] for k, v in extra.items()}}
           for key, sl in (("train", slice(0, 1500)), ("test", slice(1500, 1900)))}
    for key in mem:
        write_zarr(tmp_path / f"{key}.zarr", mem[key], chunk_rows=50)
    names = tuple(mem["test"])
    # the head (not a row array) from a store of its own: logits = h @ head, no bias
    head = {"head_weight": np.ascontiguousarray(parts["head"].T), "head_bias": np.zeros(C, np.float32)}
    for k, v in head.items():
        zarr.create_array(str(tmp_path / "head.zarr"), name=k, data=v)
    mem["train"].update(head)
    whole = chunks.open_arrays([tmp_path / "train.zarr", tmp_path / "head.zarr"], (*names, *head))
    window = chunks.open_arrays([tmp_path / "test.zarr"], names, rows=(100, 300))
    assert window["features"].shape == (200, D) and isinstance(window["features"], chunks.RowWindow)
    tried = []
    for method, cls in METHODS.items():
        if cls.needs_network:
            continue
        params = {"k": 5} if method == "knn" else {}
        fitted_lazy, fitted_mem = _fit(method, whole, **params), _fit(method, mem["train"], **params)
        got = fitted_lazy.score(**{k: window[k] for k in cls.requires})
        ref = fitted_mem.score(**{k: mem["test"][k][100:300] for k in cls.requires})
        np.testing.assert_allclose(got, ref, rtol=1e-12, err_msg=method)
        tried.append(method)
    assert {"msp", "energy", "gradnorm", "exgrad_l1", "mahalanobis", "knn", "grood", "grood_gnorm"} <= set(tried)
    with pytest.raises(KeyError, match="nothing_here"):
        chunks.open_arrays([tmp_path / "test.zarr"], ("nothing_here",))
