"""GROOD and kNN search with the job's resources: faiss on any number of threads, or on a GPU, only
proposes candidates; the exact scores are ranked by float64 distances (grood.search.exact) and are
the same bits on 1 and N threads and whoever proposed.  (The GPU itself: tests/gpu/smoke.sh.)"""

from __future__ import annotations

import numpy as np
import pytest

from grood import search
from grood.search import exact, query


def _vectors(n=4000, nq=300, d=84, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * 3 + 5).astype(np.float32)
    q = (rng.standard_normal((nq, d)) * 3 + 5).astype(np.float32)
    x[100:110] = x[7]  # ties: ten copies of one row, broken by row id
    q[:3] = x[7]
    return x, q


@pytest.mark.parametrize("k", [1, 50])
def test_exact_kth_distance_is_the_same_on_1_and_n_threads(k):
    x, q = _vectors()
    index = search.build_index(x)
    got = {}
    for threads in (1, 2, 4):
        with search.search_threads(threads):
            got[threads] = search.exact_kth_distance(index, q, k, use_gpu=False)
    assert got[1].dtype == np.float64
    assert got[1].tobytes() == got[2].tobytes() == got[4].tobytes()
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    brute = np.sort((q64**2).sum(1)[:, None] + (x64**2).sum(1)[None] - 2 * q64 @ x64.T, 1)[:, k - 1]
    np.testing.assert_allclose(got[1], brute, rtol=1e-9, atol=1e-9)  # and it is the exact distance


def test_detectors_score_the_same_bits_on_1_and_n_threads():
    from grood.detectors import make_detector

    x, q = _vectors(n=3000, nq=300)
    logits = np.random.default_rng(1).standard_normal((3000, 4)).astype(np.float32)
    labels = logits.argmax(1)
    labels[::5] = (labels[::5] + 1) % 4  # some wrong: GROOD indexes the correctly classified rows only
    grood = make_detector("grood", {"k": 1}).fit(gradients=x, logits=logits, labels=labels)
    knn = make_detector("knn", {"k": 20}).fit(features=x)
    for det, arrays in ((grood, {"gradients": q}), (knn, {"features": q})):
        det.use_gpu = False
        scores = []
        for threads in (1, 3):
            with search.search_threads(threads):
                scores.append(det.score(**arrays))
        assert scores[0].tobytes() == scores[1].tobytes(), type(det).__name__


def test_whoever_proposes_the_candidates_the_result_is_the_same():
    """A proposer whose float32 distances round differently (as a GPU's GEMM does), one that leaves
    rounds to the CPU index (k beyond the GPU's limit) and faiss's own CPU search agree bit for bit."""
    x, q = _vectors(n=4000, nq=300)
    index = search.build_index(x)
    reference = exact.exact_search(index, q, 5)

    def other_rounding(qq, kk):  # float32 ‖q‖² + ‖x‖² − 2 q·x in another order, a few ulps off
        d = (qq**2).sum(1)[:, None] + (x**2).sum(1)[None] - 2 * (qq @ x.T)
        d *= np.float32(1 + 3e-7)
        ids = np.argsort(d, 1, kind="stable")[:, :kk]
        return np.take_along_axis(d, ids, 1), ids

    for propose in (other_rounding, lambda qq, kk: None):
        got = exact.exact_search(index, q, 5, propose=propose)
        assert got[0].tobytes() == reference[0].tobytes() and np.array_equal(got[1], reference[1])


def test_the_gpu_proposer_maps_an_id_map_back_and_respects_the_gpu_k_limit(monkeypatch):
    """Without a GPU the proposer is None (the CPU proposes); with one (here a CPU clone stands in for
    the GPU copy) a shard's ``IndexIDMap2`` gets its stored ids back, and k beyond faiss's GPU limit is
    left to the CPU index."""
    from grood.search.vectors import faiss

    x, q = _vectors(n=3000, nq=50)
    index = search.build_index(x, rows=(1000, 3000), row_ids=True)
    assert query.gpu_proposer(index, False) is None
    monkeypatch.setattr(query, "on_device", lambda inner, use_gpu: faiss().clone_index(inner))
    propose = query.gpu_proposer(index, True)
    _, ids = propose(q, 4)
    assert ids.min() >= 1000  # global row ids, not positions in the shard
    assert propose(q, query.GPU_MAX_K + 1) is None
    got = exact.exact_search(index, q, 4, propose=propose)
    want = exact.exact_search(index, q, 4)
    assert got[0].tobytes() == want[0].tobytes() and np.array_equal(got[1], want[1])


def test_asking_for_a_gpu_without_one_fails_at_once_saying_so():
    from grood.search.vectors import gpu_available

    if gpu_available():
        pytest.skip("this machine's faiss sees a GPU")
    index = search.build_index(_vectors(n=200, nq=2)[0])
    with pytest.raises(RuntimeError, match=r"search.gpu: true.*sees no GPU"):
        search.exact_kth_distance(index, np.zeros((2, 84), np.float32), 1, use_gpu=True)


def test_score_stage_writes_the_same_scores_on_1_and_2_threads(tmp_path):
    from grood.detectors import make_detector
    from grood.detectors.store import save_detector
    from grood.stages.score import score_stage
    from grood.storage import write_zarr

    x, q = _vectors(n=2000, nq=200)
    save_detector(make_detector("knn", {"k": 10}).fit(features=x), tmp_path / "knn.npz")
    write_zarr(tmp_path / "q.zarr", {"features": q, "logits": q[:, :3], "labels": np.full(len(q), -1)})
    for threads in (1, 2):
        score_stage(tmp_path / "knn.npz", [tmp_path / "q.zarr"], tmp_path / f"{threads}.npy", threads=threads,
                    search_gpu=False)
    assert (tmp_path / "1.npy").read_bytes() == (tmp_path / "2.npy").read_bytes()
