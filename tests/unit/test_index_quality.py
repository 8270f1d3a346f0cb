"""The index_quality stage: what a detector's approximate index costs, recomputed independently
(numpy brute force for the exact neighbours, faiss's own search for the approximate ones), and the
table evaluate makes of it."""

import json

import numpy as np
import pytest

from grood.evaluation.metrics import auroc
from grood.stages.evaluate import index_quality_table
from grood.stages.fit_detector import fit_detector_stage
from grood.stages.index_quality import index_quality_stage
from grood.storage import write_zarr

C, D = 5, 32


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Train / test / OOD feature stores and gradient stores (clustered, so IVF cells mean something)."""
    rng = np.random.default_rng(0)
    tmp = tmp_path_factory.mktemp("iq")
    centres = rng.normal(scale=4, size=(C, D))
    out = {}
    for part, n, shift in (("train", 3000, 0.0), ("test", 300, 0.0), ("ood", 300, 3.0)):
        y = rng.integers(0, C, n)
        h = (centres[y] + shift + rng.normal(size=(n, D))).astype(np.float32)
        z = (h @ centres.T).astype(np.float32)
        z[:50] = -z[:50]  # some misclassified rows: GROOD's index leaves them out
        g = (h + rng.normal(scale=0.1, size=h.shape)).astype(np.float32)
        write_zarr(tmp / f"{part}.zarr", {"features": h, "logits": z, "labels": y}, chunk_rows=256)
        write_zarr(tmp / f"{part}_g.zarr", {"gradients": g}, chunk_rows=256)
        out[part] = {"features": h, "logits": z, "labels": y, "gradients": g}
    out["dir"] = tmp
    return out


def _brute_kth(vectors, queries, k):
    d = ((queries[:, None, :].astype(np.float64) - vectors[None].astype(np.float64)) ** 2).sum(-1)
    return np.sort(d, axis=1)[:, k - 1], np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("method, params, store", [
    ("grood", {"k": 1, "index": {"kind": "ivf_flat", "nlist": 16, "nprobe": 1}}, "_g"),
    ("knn", {"k": 3, "index": {"kind": "ivf_pq", "nlist": 16, "nprobe": 2, "m": 8, "nbits": 6}}, ""),
])
def test_report_matches_an_independent_recomputation(stores, tmp_path, method, params, store):
    tmp = stores["dir"]
    train = [str(tmp / "train.zarr")] + ([str(tmp / "train_g.zarr")] if store else [])
    fit_detector_stage(method, params, train, tmp_path / "det.npz")
    sample = 120
    rep = index_quality_stage(tmp_path / "det.npz", train, [str(tmp / f"test{store}.zarr")],
                              {"ood": [str(tmp / f"ood{store}.zarr")]}, tmp_path / "iq.json", sample=sample, seed=3)
    assert json.loads((tmp_path / "iq.json").read_text())["parts"] == json.loads(json.dumps(rep["parts"]))
    part = rep["parts"]["ood"]
    assert part["n_id_queries"] == part["n_ood_queries"] == sample and rep["index"]["kind"] == params["index"]["kind"]

    # independently: the same seeded sample, exact neighbours by float64 brute force over the indexed
    # rows, approximate ones from the fitted index itself
    from grood.storage.chunks import seeded_sample
    from grood.search import prepare
    from grood.detectors.store import load_detector

    det = load_detector(tmp_path / "det.npz")
    name, metric, k = det.requires[0], det.index_spec.metric, det.k
    tr = stores["train"]
    keep = tr["logits"].argmax(1) == tr["labels"] if method == "grood" else np.ones(len(tr[name]), bool)
    vectors = prepare(tr[name][keep], metric)
    q = np.concatenate([stores["test"][name][seeded_sample(300, sample, 3)],
                        stores["ood"][name][seeded_sample(300, sample, 4)]])
    exact_kth, exact_ids = _brute_kth(vectors, prepare(q, metric), k)
    approx_d, approx_ids = det.index_.search(prepare(q, metric), k)
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approx_ids, exact_ids)])
    assert part["recall_at_k"] == pytest.approx(recall, abs=1e-12)
    assert 0.3 < recall < 1.0  # nprobe < nlist on purpose: the approximation is visible
    assert part["auroc_exact"] == pytest.approx(auroc(-exact_kth[:sample], -exact_kth[sample:]), abs=1e-9)
    approx_kth = approx_d[:, k - 1].astype(np.float64)
    assert part["auroc_approx"] == pytest.approx(auroc(-approx_kth[:sample], -approx_kth[sample:]), abs=1e-9)
    assert part["auroc_change_points"] == pytest.approx(100 * (part["auroc_approx"] - part["auroc_exact"]))

    table = index_quality_table([{"seed": 0, "detector": method, "path": str(tmp_path / "iq.json")}])
    assert table.loc[0, "recall_at_k"] == part["recall_at_k"] and table.loc[0, "index"] == params["index"]["kind"]


def test_exact_detectors_are_refused(stores, tmp_path):
    tmp = stores["dir"]
    fit_detector_stage("knn", {"k": 2}, [str(tmp / "train.zarr")], tmp_path / "det.npz")
    with pytest.raises(ValueError, match="searches exactly"):
        index_quality_stage(tmp_path / "det.npz", [str(tmp / "train.zarr")], [str(tmp / "test.zarr")],
                            {"ood": [str(tmp / "ood.zarr")]}, tmp_path / "iq.json")


def test_nprobe_sweep_reaches_exact_search_when_every_cell_is_probed(stores, tmp_path):
    """index_quality.nprobe: the IVF index is searched again at each nprobe; probing all cells finds the
    exact neighbours, and evaluate's table gets one row per nprobe beside the configured one."""
    tmp = stores["dir"]
    train = [str(tmp / "train.zarr"), str(tmp / "train_g.zarr")]
    fit_detector_stage("grood", {"k": 1, "index": {"kind": "ivf_flat", "nlist": 16, "nprobe": 1}}, train,
                       tmp_path / "det.npz")
    rep = index_quality_stage(tmp_path / "det.npz", train, [str(tmp / "test_g.zarr")],
                              {"ood": [str(tmp / "ood_g.zarr")]}, tmp_path / "iq.json", sample=100, seed=1,
                              nprobes=[16, 2, 4])
    sweep = rep["parts"]["ood"]["nprobe_sweep"]
    assert [s["nprobe"] for s in sweep] == [2, 4, 16] and rep["nprobe_sweep"] == [2, 4, 16]
    assert sweep[-1]["recall_at_k"] == 1.0 and sweep[-1]["auroc_change_points"] == pytest.approx(0, abs=1e-9)
    assert rep["parts"]["ood"]["recall_at_k"] <= sweep[0]["recall_at_k"] <= sweep[-1]["recall_at_k"]
    table = index_quality_table([{"seed": 0, "detector": "grood", "path": str(tmp_path / "iq.json")}])
    assert table["nprobe"].tolist() == [1, 2, 4, 16] and table["configured"].tolist() == [True, False, False, False]
    assert (table["ms_per_query"] > 0).all()
