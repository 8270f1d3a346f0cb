"""`shards.index`: a k-NN detector's index searched in row shards by separate jobs and merged
exactly — stage by stage on tiny Zarr stores, against the canonical exact search over all rows."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import config_with_shards

from grood.detectors.store import DetectorFileError, load_detector, read_header
from grood.search.exact import exact_search
from grood.search.vectors import prepare
from grood.stages.fit_detector import fit_detector_stage
from grood.stages.score import score_stage
from grood.stages.search_index_shard import search_index_shard_stage
from grood.storage import ZarrWriter

N_TRAIN, N_TEST, WIDTH, CLASSES, CHUNK = 45, 13, 6, 3, 8

# method, params, the array searched; GROOD indexes only correctly classified rows, kNN all of them
CASES = [("grood", {"k": 2}, "gradients"), ("knn", {"k": 3}, "features"),
         ("grood", {"k": 1, "metric": "cosine"}, "gradients")]


def _store(path, rng, n):
    with ZarrWriter(path, n, CHUNK) as w:
        x = rng.standard_normal((n, WIDTH)).astype(np.float32)
        x[5] = x[3]  # an exact duplicate: a tie broken by row id
        w.write(0, gradients=x, features=x[:, ::-1] + 0.5, logits=rng.standard_normal((n, CLASSES)).astype(np.float32),
                labels=rng.integers(0, CLASSES, n))
    return [path]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d, rng = tmp_path_factory.mktemp("index_shards"), np.random.default_rng(3)
    return _store(d / "train.zarr", rng, N_TRAIN), _store(d / "test.zarr", rng, N_TEST)


def _reference(det, train, test, name):
    """Scores from the canonical exact search over every indexed row at once (no shards)."""
    import zarr

    from grood.search.build import build_index

    tr = {k: a[:] for k, a in zarr.open_group(str(train[0]), mode="r").arrays()}
    vectors, mask = det.indexed_rows(**tr)
    index = build_index(vectors, det.index_spec, mask)
    q = zarr.open_group(str(test[0]), mode="r")[name][:]
    dist, _ = exact_search(index, q, det.k, det.index_spec.metric)
    # independent of faiss: float64 brute force over the (prepared) float32 rows
    x = prepare(vectors if mask is None else vectors[mask], det.index_spec.metric).astype(np.float64)
    p = prepare(q, det.index_spec.metric).astype(np.float64)
    brute = np.sort(((p[:, None, :] - x[None]) ** 2).sum(-1), axis=1)[:, det.k - 1]
    np.testing.assert_allclose(dist[:, det.k - 1], brute, rtol=1e-12)
    return det.score_from_kth_distance(dist[:, det.k - 1])


@pytest.mark.parametrize("shards", [3, 7])  # 7 > the 5 chunks of 8 rows: empty shards
@pytest.mark.parametrize("method,params,name", CASES)
def test_sharded_scores_equal_exact_search(stores, tmp_path, method, params, name, shards):
    train, test = stores
    fit_detector_stage(method, params, train, tmp_path / "whole.npz")
    fit_detector_stage(method, params, train, tmp_path / "sharded.npz", index_shards=shards)
    files = [tmp_path / f"{i}-of-{shards}.npz" for i in range(shards)]
    metas = [search_index_shard_stage(tmp_path / "sharded.npz", train, test, f, i, shards)
             for i, f in enumerate(files)]
    assert all(m["rows"][0] % CHUNK == 0 for m in metas)  # shards start on the store's chunks
    _, mask = load_detector(tmp_path / "sharded.npz").indexed_rows(**_train_arrays(train))
    assert sum(m["n_indexed"] for m in metas) == (N_TRAIN if mask is None else mask.sum())
    assert any(m["rows"][0] == m["rows"][1] for m in metas) == (shards == 7)
    score_stage(tmp_path / "sharded.npz", test, tmp_path / "sharded.npy", index_shards=files)
    score_stage(tmp_path / "whole.npz", test, tmp_path / "whole.npy")
    sharded, whole = np.load(tmp_path / "sharded.npy"), np.load(tmp_path / "whole.npy")
    ref = _reference(load_detector(tmp_path / "whole.npz"), train, test, name)
    assert sharded.dtype == np.float64 and sharded.tobytes() == ref.tobytes()  # bit for bit
    assert whole.tobytes() == ref.tobytes()  # the unsharded score job's canonical search: the same bits


def _train_arrays(train):
    from grood.storage.chunks import open_arrays

    return open_arrays(train, ("gradients", "features", "logits", "labels"))


@pytest.mark.parametrize("method,params,name", CASES[:2])
def test_index_sharded_file_holds_no_index(stores, tmp_path, method, params, name):
    train, test = stores
    fit_detector_stage(method, params, train, tmp_path / "det.npz", index_shards=3)
    header = read_header(tmp_path / "det.npz")
    assert header["index_shards"] == 3 and "index_" not in header["state"]
    assert "index_" not in np.load(tmp_path / "det.npz").files
    det = load_detector(tmp_path / "det.npz")
    assert det.index_shards == 3 and not hasattr(det, "index_")
    with pytest.raises(ValueError, match=r"shards.index: 3 and holds no index.*search_index_shard"):
        score_stage(tmp_path / "det.npz", test, tmp_path / "s.npy")
    with pytest.raises(ValueError, match="fitted for shards.index: 3"):
        search_index_shard_stage(tmp_path / "det.npz", train, test, tmp_path / "x.npz", 0, 2)
    assert not (tmp_path / "s.npy").exists() and not (tmp_path / "x.npz").exists()
    from grood.run.apply import RunError, scorable_detector

    with pytest.raises(RunError, match="cannot score new images"):  # `grood score`, before any image is read
        scorable_detector(tmp_path / "det.npz")


def test_missing_or_foreign_shard_results_are_refused(stores, tmp_path):
    train, test = stores
    fit_detector_stage("knn", {"k": 2}, train, tmp_path / "det.npz", index_shards=2)
    files = [tmp_path / f"{i}.npz" for i in range(2)]
    for i, f in enumerate(files):
        search_index_shard_stage(tmp_path / "det.npz", train, test, f, i, 2)
    with pytest.raises(ValueError, match="does not match the 1 index shard results"):
        score_stage(tmp_path / "det.npz", test, tmp_path / "s.npy", index_shards=files[:1])
    with pytest.raises(ValueError, match="the part has 45 rows"):  # results of another part
        score_stage(tmp_path / "det.npz", train, tmp_path / "s.npy", index_shards=files)
    with pytest.raises(ValueError, match="no k-NN index to shard"):
        fit_detector_stage("msp", {}, train, tmp_path / "msp.npz", index_shards=2)
    with pytest.raises(ValueError, match="pass no rows or shard"):
        score_stage(tmp_path / "det.npz", test, tmp_path / "s.npz", index_shards=files, shard=(0, 2))


def test_tampered_index_shards_header_is_refused(stores, tmp_path):
    import json

    from grood.storage import load_npz, save_npz

    fit_detector_stage("grood", {"k": 1}, stores[0], tmp_path / "det.npz", index_shards=2)
    arrays, meta = load_npz(tmp_path / "det.npz")
    save_npz(tmp_path / "bad.npz", arrays, {**meta, "index_shards": "2"})
    with pytest.raises(DetectorFileError, match="index_shards '2'"):
        load_detector(tmp_path / "bad.npz")
    assert json.dumps(meta)  # the header stays JSON


# ---------------------------------------------------------------------------------------- config


def test_config_refuses_index_shards_with_score_shards_or_approximate_index():
    from grood.config import validate

    assert validate(config_with_shards(index=3)) == []
    assert validate(config_with_shards(index="3", score="1")) == []  # digit strings from --config
    problems = validate(config_with_shards(index=2, score=2))
    assert len(problems) == 1 and problems[0].startswith("shards.index: 2 with shards.score: 2")
    config = config_with_shards(index=2)
    config["detectors"]["knn"]["index"] = {"kind": "ivf_flat"}
    assert [p.split(":")[0] for p in validate(config)] == ["detectors.knn.index"]
    assert "use index: {kind: flat} or shards.index: 1" in validate(config)[0]
    config["shards"] = {"index": 1}
    assert validate(config) == []
