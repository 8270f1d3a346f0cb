"""The canonical exact search where vectors tie: groups of identical rows are stored once and counted
once per row (grood.search.duplicates), and the certainty bound shrinks near tiny vectors
(grood.search.exact.certainty_bound) — so GROOD's training gradients, many of them zero or nearly
zero, are searched in one or two rounds, on any thread count, with the float64 brute force's result."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import brute_force_topk
from grood.search import IndexSpec, build_index, build_unique_index, exact, sharded
from grood.search import duplicates as dup_mod
from grood.search.vectors import faiss, prepare, search_threads


_brute_force = brute_force_topk  # float64 distances ranked by (distance, row): the reference


def _groups(n_distinct=40, d=12, seed=0):
    """A few distinct rows and large groups of identical ones (zeros, −0.0 among them, and copies of
    one row), interleaved; queries on a group, beside one and far from all."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_distinct + 300, d)).astype(np.float32)
    x[rng.choice(len(x), 150, replace=False)] = 0.0
    x[np.flatnonzero((x == 0).all(1))[::3]] = -0.0  # equal as floats: one group with the zeros
    copies = rng.choice(np.flatnonzero(~(x == 0).all(1)), 80, replace=False)
    x[copies] = x[copies[0]]
    q = rng.standard_normal((30, d)).astype(np.float32)
    q[:5] = 0.0
    q[5:10] = x[copies[0]]
    q[10:15] = x[copies[0]] + 1e-3
    return x, q


def _exact_equals_brute_force(x, q, k) -> bool:
    index, duplicates = build_unique_index(x, row_ids=True)
    d, i = exact.exact_search(index, q, k, duplicates=duplicates)
    ref_d, ref_i = _brute_force(q, x, k)
    return bool(np.array_equal(i, ref_i) and np.allclose(d, ref_d, rtol=1e-12, atol=1e-300))


def test_identical_rows_are_stored_once_with_their_rows_listed():
    x, _ = _groups()
    index, duplicates = build_unique_index(x)
    zeros = np.flatnonzero((x == 0).all(1))
    distinct = np.unique(x + np.float32(0), axis=0)
    assert index.ntotal == len(distinct) and index.ntotal + len(duplicates) == len(x)
    assert np.array_equal(duplicates[duplicates[:, 1] == zeros[0], 0], zeros[1:])  # −0.0 joins 0.0
    assert (duplicates[:, 1] < duplicates[:, 0]).all()  # the group's smallest row is the indexed one
    stored, ids = exact.flat_storage(index)
    assert np.array_equal(stored, x[ids]) and np.array_equal(np.sort(np.r_[ids, duplicates[:, 0]]), np.arange(len(x)))
    # without identical rows: build_index's very index, and nothing beside it
    plain = np.unique(x, axis=0)
    again, none = build_unique_index(plain)
    assert none.shape == (0, 2) and type(again).__name__ == "IndexFlatL2"
    assert faiss().serialize_index(again).tobytes() == faiss().serialize_index(build_index(plain)).tobytes()


@pytest.mark.parametrize("k", [1, 5, 60, 200])  # 200: beyond the largest group (150 zeros)
def test_tied_groups_give_the_brute_force_distances_and_rows(k):
    x, q = _groups()
    assert _exact_equals_brute_force(x, q, k)
    index, duplicates = build_unique_index(x)  # ids = positions among the rows, no id map given
    _, i = exact.exact_search(index, q, k, duplicates=duplicates)
    assert np.array_equal(i, _brute_force(q, x, k)[1])


def test_counting_each_group_once_would_be_caught(monkeypatch):
    """Mutation check: a search that ignores the rows a group stands for fails the test above."""
    x, q = _groups()
    monkeypatch.setattr(exact, "with_duplicates", lambda dist, ids, duplicates, k: (dist, ids))
    assert not _exact_equals_brute_force(x, q, 5)


def test_more_rows_than_k_but_fewer_distinct_vectors():
    x = np.zeros((50, 4), np.float32)
    x[7] = 1.0
    index, duplicates = build_unique_index(x)
    assert index.ntotal == 2
    d, i = exact.exact_search(index, np.zeros((1, 4), np.float32), 10, duplicates=duplicates)
    assert i.tolist() == [[0, 1, 2, 3, 4, 5, 6, 8, 9, 10]] and not d.any()
    d, i = exact.exact_search(index, np.ones((1, 4), np.float32), 3, duplicates=duplicates)
    assert i.tolist() == [[7, 0, 1]] and d.tolist() == [[0.0, 4.0, 4.0]]


def _grood_like(seed=0, zeros=20000, others=5000, d=100):
    """GROOD's training gradients: those of saturated softmaxes exactly zero, the rest random."""
    rng = np.random.default_rng(seed)
    x = np.zeros((zeros + others, d), np.float32)
    x[rng.choice(len(x), others, replace=False)] = rng.standard_normal((others, d)).astype(np.float32)
    q = rng.standard_normal((200, d)).astype(np.float32)
    q[:100] *= 1e-3  # near the zeros: their nearest neighbour is the zero group
    q[100:120] = 0.0
    return x, q


def test_a_large_group_of_zero_rows_is_passed_in_one_or_two_rounds():
    x, q = _grood_like()
    index, duplicates = build_unique_index(x, row_ids=True)
    assert index.ntotal == 5001 and len(duplicates) == 19999
    stats = {}
    d, i = exact.exact_search(index, q, 1, duplicates=duplicates, stats=stats)
    assert stats["rounds"] <= 2 and stats["candidates"] <= 2 * len(q) * (1 + exact.default_margin(1))
    ref_d, ref_i = _brute_force(q, x, 1)
    assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, rtol=1e-12)


def test_without_collapsing_the_zero_rows_the_search_stalls():
    """Why the rows are collapsed: with every zero row in the index, the queries whose neighbour is a
    zero row search again and again until every vector is a candidate."""
    x, q = _grood_like(zeros=3000, others=1000)
    stats = {}
    exact.exact_search(build_index(x, row_ids=True), q[100:105], 1, stats=stats)
    assert stats["rounds"] >= 8


def _tiny_norms(seed=0, n=8000, d=84):
    """Like the default benchmark's GROOD gradients: norms from 10⁻⁹ to 10⁻² for most rows (confident
    images), about 1 for a few; no two rows identical."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = 10.0 ** rng.uniform(-9, -2, n)
    norms[: n // 10] = rng.uniform(0.1, 1.0, n // 10)
    x = (directions * norms[:, None]).astype(np.float32)
    q = x[rng.choice(n, 150, replace=False)] * np.float32(1.01)
    return x, q


@pytest.mark.parametrize("k", [1, 50])
def test_near_tiny_vectors_the_bound_shrinks_and_one_round_does(k):
    x, q = _tiny_norms()
    index = build_index(x, row_ids=True)
    stats = {}
    d, i = exact.exact_search(index, q, k, stats=stats)
    assert stats["rounds"] <= 2
    ref_d, ref_i = _brute_force(q, x, k)
    assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, rtol=1e-12, atol=0)


def test_with_the_global_bound_alone_tiny_vectors_stall(monkeypatch):
    """Mutation check: the largest stored norm's bound (≈ 10⁻⁵ here) exceeds the spread of the tiny
    vectors' distances, so the search would grow its candidates over many rounds."""
    x, q = _tiny_norms(n=5000)
    monkeypatch.setattr(exact, "certainty_bound", lambda qn, max_norm, kth, d: exact.error_bound(qn, max_norm, d))
    stats = {}
    exact.exact_search(build_index(x, row_ids=True), q[:20], 1, stats=stats)
    assert stats["rounds"] >= 5


_GAMMA = 86 * 2.0**-24 / (1 - 86 * 2.0**-24)  # γ_{D+2} of float32 at D = 84


def _shells(scale: float, seed=0, d=84, queries=10):
    """Per query, 5 vectors at distance ρ² and 20 at ρ² + γ (‖q‖ + ‖x‖)² / 5 — nearer than faiss's
    worst-case float32 error can tell apart —, all scaled by ``scale``, beside far vectors of norm 1."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((queries, d))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rho2 = 0.01
    gap = _GAMMA * (2.0 + 0.1) ** 2 / 5
    rows = []
    for qi in q:
        u = rng.standard_normal((25, d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        radius = np.sqrt(np.r_[np.full(5, rho2), np.full(20, rho2 + gap)])
        rows.append(qi + radius[:, None] * u)
    far = rng.standard_normal((500, d))
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    x = np.concatenate([*rows, far / scale])[rng.permutation(25 * queries + 500)]
    return (x * scale).astype(np.float32), (q * scale).astype(np.float32)


def _adversary(x: np.ndarray, k: int):
    """A proposer whose distances err by faiss's whole worst-case bound γ (‖q‖ + ‖x‖)², against the
    result: the true top-k look farther, every other vector nearer."""
    x64 = x.astype(np.float64)
    xn = np.linalg.norm(x64, axis=1)

    def propose(qq, kk):
        q64 = qq.astype(np.float64)
        qn = np.linalg.norm(q64, axis=1)
        true = np.square(x64[None] - q64[:, None]).sum(-1)
        err = _GAMMA * (qn[:, None] + xn[None]) ** 2
        seen = true + np.where(true <= np.sort(true, 1)[:, k - 1 : k], err, -err)
        ids = np.argsort(seen, 1, kind="stable")[:, :kk]
        return np.take_along_axis(seen, ids, 1).astype(np.float32), ids

    return propose


@pytest.mark.parametrize("scale", [1.0, 1e-4])  # 1e-4: the local bound decides (the far rows set the global)
def test_a_proposer_erring_by_the_whole_rounding_bound_cannot_make_it_wrong(scale):
    x, q = _shells(scale)
    k, stats = 5, {}
    d, i = exact.exact_search(build_index(x, row_ids=True), q, k, propose=_adversary(x, k), stats=stats)
    ref_d, ref_i = _brute_force(q, x, k)
    assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, rtol=1e-12, atol=0)
    assert 2 <= stats["rounds"] <= 3  # the adversary hid the neighbours from the first round
    qn, largest = np.linalg.norm(q.astype(np.float64), axis=1), exact.largest_norm(x)
    local = exact.certainty_bound(qn, largest, ref_d[:, -1], x.shape[1])
    assert (local < exact.error_bound(qn, largest, x.shape[1]) / 1e6).all() == (scale < 1)


def test_a_certainty_bound_below_the_rounding_error_would_be_caught(monkeypatch):
    """Mutation check: without the bound the adversary's first proposals look certain, and are wrong."""
    x, q = _shells(1e-4)
    monkeypatch.setattr(exact, "certainty_bound", lambda qn, max_norm, kth, d: np.zeros(len(qn)))
    _, i = exact.exact_search(build_index(x, row_ids=True), q, 5, propose=_adversary(x, 5))
    assert not np.array_equal(i, _brute_force(q, x, 5)[1])


def _mixed(seed=0):
    """Zero rows, tiny rows and ordinary ones: the three cases at once."""
    x, q = _grood_like(seed, zeros=3000, others=1000, d=84)
    t, tq = _tiny_norms(seed, n=2000)
    return np.concatenate([x, t]), np.concatenate([q[::2], tq[::3]])


def test_grood_and_knn_score_the_same_bits_on_1_and_2_threads():
    from grood.detectors import make_detector

    x, q = _mixed()
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((len(x), 4)).astype(np.float32)
    labels = np.where(rng.random(len(x)) < 0.9, logits.argmax(1), (logits.argmax(1) + 1) % 4)
    grood = make_detector("grood", {"k": 1}).fit(gradients=x, logits=logits, labels=labels)
    knn = make_detector("knn", {"k": 50}).fit(features=x)
    assert len(grood.index_duplicates_) > 2000 and len(knn.index_duplicates_) > 2000  # cosine: zeros stay 0
    for det, arrays in ((grood, {"gradients": q}), (knn, {"features": q})):
        det.use_gpu = False
        scores = {}
        for threads in (1, 2):
            with search_threads(threads):
                scores[threads] = det.score(**arrays)
        assert scores[1].tobytes() == scores[2].tobytes(), type(det).__name__
    correct = logits.argmax(1) == labels
    np.testing.assert_allclose(grood.score(gradients=q), -_brute_force(q, x[correct], 1)[0][:, 0], rtol=1e-12)


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_groups_split_across_shards_merge_to_the_unsharded_search(shards):
    x, q = _groups(seed=3)
    x = np.concatenate([x, np.zeros((40, x.shape[1]), np.float32)])  # zero rows at both ends
    k = 20
    index, duplicates = build_unique_index(x, row_ids=True)
    ref_d, ref_i = exact.exact_search(index, q, k, duplicates=duplicates)
    parts = [sharded.search_shard(x, q, k, s, shards) for s in range(shards)]
    assert sum(p[2]["n_indexed"] for p in parts) == len(x)
    d, i, meta = sharded.merge_shard_results(parts)
    assert d.tobytes() == ref_d.tobytes() and np.array_equal(i, ref_i) and meta["canonical"]
    assert np.array_equal(i, _brute_force(q, x, k)[1])


def test_a_hash_collision_leaves_the_rows_in_the_index(monkeypatch):
    """Rows are grouped by hash and then compared: rows that only share a hash stay apart."""
    x, q = _groups(seed=4)
    monkeypatch.setattr(dup_mod, "row_hashes", lambda rows: np.zeros(len(rows), np.uint64))  # all collide
    index, duplicates = build_unique_index(x, row_ids=True)
    first_equal = (x == x[0]).all(1)
    assert len(duplicates) == first_equal.sum() - 1 and (duplicates[:, 1] == 0).all()
    _, i = exact.exact_search(index, q, 7, duplicates=duplicates)
    assert np.array_equal(i, _brute_force(q, x, 7)[1])


def test_cosine_rows_are_collapsed_after_normalising():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((100, 8)).astype(np.float32)
    x[50:] = x[0]  # identical rows stay identical once normalised
    index, duplicates = build_unique_index(x, IndexSpec(metric="cosine"))
    assert index.ntotal == 50 and len(duplicates) == 50
    q = rng.standard_normal((10, 8)).astype(np.float32)
    _, i = exact.exact_search(index, q, 60, "cosine", duplicates=duplicates)
    assert np.array_equal(i, _brute_force(prepare(q, "cosine"), prepare(x, "cosine"), 60)[1])


def test_approximate_kinds_keep_every_row():
    x, _ = _groups()
    index, duplicates = build_unique_index(x, IndexSpec(kind="ivf_flat", nlist=4, nprobe=4))
    assert index.ntotal == len(x) and duplicates.shape == (0, 2)


def test_stored_duplicates_round_trip_and_bad_ones_are_refused(tmp_path):
    from grood.detectors import make_detector
    from grood.detectors.store import load_detector, save_detector

    x, q = _groups()
    det = make_detector("knn", {"k": 3})
    det.fit(features=np.abs(x) + 1.0)  # cosine: shifted, so the zero group stays a group of equal rows
    assert len(det.index_duplicates_) and type(det.index_).__name__ == "IndexIDMap2"
    save_detector(det, tmp_path / "knn.npz")
    again = load_detector(tmp_path / "knn.npz")
    assert np.array_equal(again.index_duplicates_, det.index_duplicates_)
    assert again.score(features=q).tobytes() == det.score(features=q).tobytes()
    with pytest.raises(ValueError, match=r"not sorted by \(indexed id, row id\)"):
        dup_mod.check_duplicates(det.index_duplicates_[::-1])
    with pytest.raises(ValueError, match=r"\(M, 2\) integer array"):
        dup_mod.check_duplicates(np.zeros((3, 2)))
