"""Pickle-free detector files: every method round-trips exactly; crafted files are refused, not run."""

import json
import pickle

import numpy as np
import pytest
import torch

from grood.detectors import METHODS, make_detector
from grood.detectors.store import (FORMAT_VERSION, DetectorFileError, load_detector, read_header,
                                   save_detector)
from grood.storage import save_npz

N, D, C = 300, 16, 4
# small enough for a k-th neighbour on the random training set; the rest keep their defaults
PARAMS = {"knn": {"k": 5}, "grood": {"k": 2}, "odin": {"epsilon": 0.002, "batch_size": 7}}


def _arrays(seed, n=N):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, n)
    features = np.maximum(rng.normal(size=(n, D)) + labels[:, None] * 0.5, 0.0)
    head_weight = np.random.default_rng(99).normal(size=(C, D))  # one head for every part
    head_bias = np.random.default_rng(98).normal(size=C)
    logits = features @ head_weight.T + head_bias
    gradients = rng.normal(size=(n, D)).astype(np.float32)
    return {"features": features, "logits": logits, "labels": labels, "gradients": gradients,
            "proto_dist": rng.random(n), "pi_ood": rng.random(n), "gaia_a": rng.normal(size=(n, 6)),
            "gaia_z": rng.random((n, 8)), "head_weight": head_weight, "head_bias": head_bias}


@pytest.fixture(scope="module")
def net():
    from grood.net.models import cnn_bn_gap
    from grood.net.preprocess import spec_from_training

    torch.manual_seed(0)
    model = cnn_bn_gap(1, C, width=4).eval()
    images = np.random.default_rng(3).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    return {"model": model, "images": images, "spec": spec_from_training(images), "device": "cpu"}


def _fitted(method):
    det = make_detector(method, PARAMS.get(method, {}))
    train = _arrays(0)
    return det.fit(**{k: train[k] for k in det.fit_requires})


def _score(det, net):
    return det.score(**net) if det.needs_network else det.score(**{k: _arrays(1)[k] for k in det.requires})


@pytest.mark.parametrize("method", sorted(METHODS))
def test_round_trip_gives_identical_scores(method, net, tmp_path):
    det = _fitted(method)
    save_detector(det, tmp_path / "det.npz", stores=["train.zarr"])
    again = load_detector(tmp_path / "det.npz")
    assert type(again) is type(det) and again.get_params() == det.get_params()
    np.testing.assert_array_equal(_score(again, net), _score(det, net))
    header = read_header(tmp_path / "det.npz")
    assert header["method"] == method and header["provenance"]["stores"] == ["train.zarr"]
    assert header["format_version"] == FORMAT_VERSION
    with np.load(tmp_path / "det.npz", allow_pickle=False) as z:  # the file itself holds no object
        assert all(z[k].dtype.kind in "biufU" for k in z.files)


def test_fitted_state_is_what_fit_learned(tmp_path):
    det = _fitted("mahalanobis")
    save_detector(det, tmp_path / "m.npz")
    again = load_detector(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.means_, det.means_)
    np.testing.assert_array_equal(again.whiten_, det.whiten_)
    assert again.rank_ == det.rank_ and isinstance(again.rank_, int)
    g = load_detector(_save(_fitted("grood"), tmp_path / "g.npz"))
    assert g.index_.ntotal == g.n_indexed_ and type(g.index_).__name__ == "IndexFlatL2"  # no identical rows
    assert g.index_duplicates_.shape == (0, 2)


def _save(det, path):
    save_detector(det, path)
    return path


def test_unfitted_detector_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save_detector(make_detector("mahalanobis"), tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("method, params, kind", [
    ("grood", {"index": {"kind": "ivf_flat", "nlist": 4, "nprobe": 2}}, "IndexIVFFlat"),
    ("grood", {"index": {"kind": "ivf_pq", "nlist": 4, "nprobe": 2, "m": 4, "nbits": 4}}, "IndexIVFPQ"),
    ("knn", {"k": 5, "index": {"kind": "ivf_flat", "nlist": 4, "nprobe": 2}}, "IndexIVFFlat"),
    ("knn", {"k": 5, "index": {"kind": "ivf_pq", "nlist": 4, "nprobe": 3, "m": 8, "nbits": 4}}, "IndexIVFPQ"),
])
def test_approximate_index_round_trips(tmp_path, method, params, kind):
    det = make_detector(method, params)
    det.fit(**{k: _arrays(0)[k] for k in det.fit_requires})
    again = load_detector(_save(det, tmp_path / "g.npz"))
    assert type(again.index_).__name__ == kind and again.index_.nprobe == det.index_.nprobe
    assert (again.index_.nlist, again.index_.ntotal) == (det.index_.nlist, det.index_.ntotal)
    assert again.get_params() == det.get_params()
    queries = {k: _arrays(1)[k] for k in det.requires}
    np.testing.assert_array_equal(again.score(**queries), det.score(**queries))


# ------------------------------------------------------------------------------- crafted files

class _Trap:
    """Unpickling this creates ``marker``: proof that a loader ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _parts(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
        meta = json.loads(str(z["__meta__"]))
    return arrays, meta


def _write_raw(path, arrays, meta_value):
    with open(path, "wb") as f:
        np.savez(f, **arrays, __meta__=meta_value)


def _refused(path, *match):
    with pytest.raises(DetectorFileError) as info:
        load_detector(path)
    text = str(info.value)
    assert str(path) in text and "Fix:" in text, text
    for m in match:
        assert m in text, text
    return text


def test_object_array_holding_a_pickle_is_refused_not_run(tmp_path):
    path = _save(_fitted("grood"), tmp_path / "g.npz")
    arrays, meta = _parts(path)
    marker = tmp_path / "pwned"
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    arrays["index_"] = trap
    _write_raw(path, arrays, np.array(json.dumps(meta)))
    _refused(path, "index_", "pickled")
    assert not marker.exists()


def test_pickled_header_is_refused_not_run(tmp_path):
    path = _save(_fitted("msp"), tmp_path / "m.npz")
    marker = tmp_path / "pwned"
    trap = np.empty((), dtype=object)
    trap[()] = _Trap(marker)
    _write_raw(path, {}, trap)
    _refused(path, "__meta__")
    assert not marker.exists()


def test_a_pickle_file_is_refused_not_run(tmp_path):
    """The pre-store format (a pickle of the fitted detector) is exactly what a crafted file is."""
    marker = tmp_path / "pwned"
    path = tmp_path / "grood.npz"
    path.write_bytes(pickle.dumps({"detector": _Trap(marker), "method": "grood"}))
    _refused(path, "not an .npz", "pickle")
    assert not marker.exists()


@pytest.mark.parametrize("field, value, match", [
    ("method", "os_system", "unknown detector method 'os_system'"),
    ("class", "os.system", "class 'os.system' does not match"),
    ("class", "grood.detectors.logits.MSP", "does not match method 'grood'"),
    ("format", "something-else", "format"),
    ("params", {"k": 1, "bogus": 3}, "bogus"),
    ("params", {"k": 0}, "k must be"),
    ("params", "k=1", "params must be a JSON object"),
    ("state", {"index_": "array", "n_indexed_": "array"}, "state entries"),
    ("state", {}, "needs fitting"),
])
def test_tampered_header_is_refused(tmp_path, field, value, match):
    path = _save(_fitted("grood"), tmp_path / "g.npz")
    arrays, meta = _parts(path)
    meta[field] = value
    if field == "state" and not value:
        arrays = {}
    _write_raw(path, arrays, np.array(json.dumps(meta)))
    _refused(path, match)


def test_format_versions_name_the_fix(tmp_path):
    path = _save(_fitted("msp"), tmp_path / "m.npz")
    arrays, meta = _parts(path)
    meta["format_version"] = FORMAT_VERSION + 1
    _write_raw(path, arrays, np.array(json.dumps(meta)))
    with pytest.raises(DetectorFileError, match="upgrade grood"):
        load_detector(path)
    meta["format_version"] = FORMAT_VERSION - 1
    _write_raw(path, arrays, np.array(json.dumps(meta)))
    with pytest.raises(DetectorFileError, match="fit the detector again"):
        load_detector(path)


def test_entries_must_match_the_declared_state(tmp_path):
    path = _save(_fitted("mahalanobis"), tmp_path / "m.npz")
    arrays, meta = _parts(path)
    _write_raw(path, {**arrays, "extra": np.zeros(3)}, np.array(json.dumps(meta)))
    _refused(path, "'extra'")
    _write_raw(path, {**arrays, "means_": np.array(["a", "b"])}, np.array(json.dumps(meta)))
    _refused(path, "means_", "dtype <U1")


def test_foreign_faiss_index_type_is_refused(tmp_path):
    import faiss

    path = _save(_fitted("knn"), tmp_path / "k.npz")
    arrays, meta = _parts(path)
    other = faiss.IndexHNSWFlat(D, 8)
    other.add(np.zeros((10, D), dtype=np.float32))
    _write_raw(path, {**arrays, "index_": faiss.serialize_index(other)}, np.array(json.dumps(meta)))
    _refused(path, "type tag")
    wrapped = faiss.IndexIDMap2(faiss.IndexHNSWFlat(D, 8))  # ids around a foreign type: refused too
    wrapped.add_with_ids(np.zeros((10, D), dtype=np.float32), np.arange(10))
    _write_raw(path, {**arrays, "index_": faiss.serialize_index(wrapped)}, np.array(json.dumps(meta)))
    _refused(path, "type tag b'IHNf'")
    _write_raw(path, {**arrays, "index_": arrays["index_"][:40]}, np.array(json.dumps(meta)))  # truncated
    _refused(path, "cannot be read")


def test_missing_and_non_detector_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no stored detector"):
        load_detector(tmp_path / "none.npz")
    save_npz(tmp_path / "protos.npz", {"P": np.zeros((2, 3))}, {"source": "mixup"})
    _refused(tmp_path / "protos.npz", "format")
    np.save(tmp_path / "a.npy", np.zeros(3))
    _refused(tmp_path / "a.npy", "single .npy")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "protos.npz").read_bytes()[:100])
    _refused(tmp_path / "trunc.npz", "truncated or corrupt")
